// Integration tests of /metrics on a live server (real UDP/TCP queries, a real file backend, the admin HTTP
// server) for what operators chart (issue 13): CoreDNS-style request/response series by zone, transport and
// family, the size and duration histograms, build info; the whole exposition clean under `promtool check
// metrics`; and every metric that deploy/grafana/svcdns.json and deploy/prometheus/svcdns-rules.yaml reference
// present in it (the rules also pass `promtool check rules`). Workers (`workers: 2`) report the same series.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { query, rcode } from '../helpers/dns-client.ts';
import { HANG_DEADLINE_MS } from '../helpers/deadline.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';
import { requireTool } from '../e2e/harness.ts';
import { metric } from '../helpers/prom-text.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DASHBOARD = path.join(ROOT, 'deploy/grafana/svcdns.json');
const RULES = path.join(ROOT, 'deploy/prometheus/svcdns-rules.yaml');

const SERVICES = `services:
  - name: web
    instances:
      - { address: 10.0.0.1, port: 8080 }
      - { address: 10.0.0.2, port: 8080 }
  - name: api
    instances:
      - { address: fd00::1, port: 80 }
`;

async function scrape(srv: TestServer): Promise<string> {
  const a = srv.app.adminAddress;
  assert.ok(a, 'admin server is running');
  const res = await fetch(`http://${a.host}:${a.port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** Family names (# TYPE lines) and their types. */
function families(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

/** Run a command with `input` on stdin; resolves with its exit code and output (bounded by the hang deadline). */
function run(cmd: string, args: string[], input = ''): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), HANG_DEADLINE_MS);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
    child.stdin.end(input);
  });
}

/** Every svcdns_* name an expression set references, histogram sample suffixes mapped to their family. */
function referenced(exprs: readonly string[], fams: Map<string, string>): Set<string> {
  const names = new Set<string>();
  for (const e of exprs) {
    for (const [n] of e.matchAll(/\bsvcdns_[a-z0-9_]+/g)) {
      const base = /^(.*)_(bucket|sum|count)$/.exec(n)?.[1];
      names.add(base !== undefined && fams.get(base) === 'histogram' ? base : n);
    }
  }
  return names;
}

function dashboardExprs(json: any): string[] {
  const out: string[] = [];
  const walk = (v: any) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if ((k === 'expr' || k === 'query' || k === 'definition') && typeof x === 'string') out.push(x);
        else walk(x);
      }
    }
  };
  walk(json);
  return out;
}

describe('/metrics on a live server (issue 13)', () => {
  let dir: string;
  let srv: TestServer;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'svcdns-metrics-'));
    await writeFile(path.join(dir, 'services.yaml'), SERVICES);
    srv = await startServer(
      {
        listen: ['127.0.0.1:0', '[::1]:0'],
        domains: ['sd.internal', 'corp.test'],
        admin: { listen: '127.0.0.1:0' },
        backends: [{ type: 'file', name: 'static', path: 'services.yaml', debounceMs: 0 }],
      },
      { configDir: dir, extra: { serveAdmin: true } },
    );
    await waitFor(async () => rcode(await query(srv.port, 'web.service.sd.internal', 'A')) === 'NOERROR');
  });
  after(async () => {
    await srv?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('svcdns_dns_requests_total / responses_total count by zone (case-insensitive), transport, family and type (CoreDNS series)', async () => {
    const v6port = srv.app.dnsAddresses[1]!.port;
    const before = await scrape(srv);
    const zone = 'sd.internal.';
    const base = (n: string, l: Record<string, string>) => metric(before, n, l) ?? 0;
    const b = {
      udpA: base('svcdns_dns_requests_total', { zone, proto: 'udp', family: '1', type: 'A' }),
      tcpSrv: base('svcdns_dns_requests_total', { zone, proto: 'tcp', family: '1', type: 'SRV' }),
      v6: base('svcdns_dns_requests_total', { zone, proto: 'udp', family: '2', type: 'AAAA' }),
      root: base('svcdns_dns_requests_total', { zone: '.', proto: 'udp', family: '1', type: 'A' }),
      corp: base('svcdns_dns_requests_total', { zone: 'corp.test.', proto: 'udp', family: '1', type: 'TXT' }),
      noerr: base('svcdns_dns_responses_total', { zone, type: 'A', rcode: 'NOERROR', transport: 'udp' }),
      refused: base('svcdns_dns_responses_total', { zone: '.', type: 'A', rcode: 'REFUSED', transport: 'udp' }),
      dur: base('svcdns_dns_request_duration_seconds_count', { zone, type: 'A' }),
      reqSize: base('svcdns_dns_request_size_bytes_count', { zone, proto: 'udp' }),
      respSize: base('svcdns_dns_response_size_bytes_count', { zone, proto: 'tcp' }),
    };
    for (let i = 0; i < 3; i++) assert.equal(rcode(await query(srv.port, 'web.service.sd.internal', 'A')), 'NOERROR');
    assert.equal(rcode(await query(srv.port, 'WEB.Service.SD.Internal', 'A')), 'NOERROR');
    assert.equal(rcode(await query(srv.port, '_web._tcp.service.sd.internal', 'SRV', { tcp: true })), 'NOERROR');
    assert.equal(rcode(await query(v6port, 'api.service.sd.internal', 'AAAA', { host: '::1' })), 'NOERROR');
    assert.equal(rcode(await query(srv.port, 'example.com', 'A')), 'REFUSED');
    assert.equal(rcode(await query(srv.port, 'internal', 'A')), 'REFUSED'); // a suffix of a zone, not in it
    await query(srv.port, 'x.corp.test', 'TXT');
    const text = await scrape(srv);
    const at = (n: string, l: Record<string, string>) => metric(text, n, l) ?? 0;
    assert.equal(at('svcdns_dns_requests_total', { zone, proto: 'udp', family: '1', type: 'A' }) - b.udpA, 4);
    assert.equal(at('svcdns_dns_requests_total', { zone, proto: 'tcp', family: '1', type: 'SRV' }) - b.tcpSrv, 1);
    assert.equal(at('svcdns_dns_requests_total', { zone, proto: 'udp', family: '2', type: 'AAAA' }) - b.v6, 1);
    assert.equal(at('svcdns_dns_requests_total', { zone: '.', proto: 'udp', family: '1', type: 'A' }) - b.root, 2);
    assert.equal(at('svcdns_dns_requests_total', { zone: 'corp.test.', proto: 'udp', family: '1', type: 'TXT' }) - b.corp, 1);
    assert.equal(at('svcdns_dns_responses_total', { zone, type: 'A', rcode: 'NOERROR', transport: 'udp' }) - b.noerr, 4);
    assert.equal(at('svcdns_dns_responses_total', { zone: '.', type: 'A', rcode: 'REFUSED', transport: 'udp' }) - b.refused, 2);
    assert.equal(at('svcdns_dns_request_duration_seconds_count', { zone, type: 'A' }) - b.dur, 4);
    assert.equal(at('svcdns_dns_request_size_bytes_count', { zone, proto: 'udp' }) - b.reqSize, 5);
    assert.equal(at('svcdns_dns_response_size_bytes_count', { zone, proto: 'tcp' }) - b.respSize, 1);
    // One server block: the label names every bound address.
    const a = srv.app.dnsAddresses;
    assert.equal(metric(text, 'svcdns_dns_requests_total', { zone })?.valueOf() !== undefined, true);
    assert.match(text, new RegExp(`server="dns://127\\.0\\.0\\.1:${a[0]!.port},\\[::1\\]:${a[1]!.port}"`));
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(metric(text, 'svcdns_build_info', { version: pkg.version, nodejs: process.version }), 1);
    assert.equal(metric(text, 'svcdns_dns_tcp_max_connections'), 1000);
  });

  it('promtool check metrics: the whole /metrics output is clean', async () => {
    const promtool = requireTool('promtool');
    await query(srv.port, 'web.service.sd.internal', 'A');
    const r = await run(promtool, ['check', 'metrics'], await scrape(srv));
    assert.equal(r.out.trim(), '', `promtool findings:\n${r.out}`);
    assert.equal(r.code, 0);
  });

  it('every metric the Grafana dashboard and the alert rules reference exists in /metrics; promtool check rules passes', async () => {
    const promtool = requireTool('promtool');
    const fams = families(await scrape(srv));
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8'));
    const dashNames = referenced(dashboardExprs(dashboard), fams);
    const rulesText = await readFile(RULES, 'utf8');
    const ruleNames = referenced([...rulesText.matchAll(/^\s*expr:\s*(\|[\s\S]*?)(?=^\s*(?:for|labels|annotations):)|^\s*expr:\s*(.+)$/gm)].map((m) => m[1] ?? m[2]!), fams);
    assert.ok(dashNames.size >= 15, `dashboard references ${dashNames.size} metrics`);
    assert.ok(ruleNames.size >= 6, `rules reference ${ruleNames.size} metrics`);
    for (const n of [...dashNames, ...ruleNames]) assert.ok(fams.has(n), `${n} is referenced but not in /metrics`);
    // What the issue asks the rules to cover.
    for (const n of ['svcdns_backend_state', 'svcdns_dns_responses_total', 'svcdns_backend_propagation_seconds', 'svcdns_dns_cache_hits_total', 'svcdns_dns_tcp_max_connections']) {
      assert.ok(ruleNames.has(n), `an alert uses ${n}`);
    }
    const r = await run(promtool, ['check', 'rules', RULES]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS/);
  });
});

describe('/metrics with workers: 2 (the worker threads report the new series too)', () => {
  let dir: string;
  let srv: TestServer;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'svcdns-metrics-w-'));
    await writeFile(path.join(dir, 'services.yaml'), SERVICES);
    srv = await startServer(
      { workers: 2, admin: { listen: '127.0.0.1:0' }, backends: [{ type: 'file', path: 'services.yaml', debounceMs: 0 }] },
      { configDir: dir, extra: { serveAdmin: true } },
    );
    await waitFor(async () => rcode(await query(srv.port, 'web.service.sd.internal', 'A')) === 'NOERROR');
  });
  after(async () => {
    await srv?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('requests answered by workers appear in svcdns_dns_requests_total and the duration histogram', async () => {
    const l = { zone: 'sd.internal.', proto: 'udp', family: '1', type: 'A' };
    const before = metric(await scrape(srv), 'svcdns_dns_requests_total', l) ?? 0;
    for (let i = 0; i < 5; i++) assert.equal(rcode(await query(srv.port, 'web.service.sd.internal', 'A')), 'NOERROR');
    const text = await scrape(srv);
    assert.equal((metric(text, 'svcdns_dns_requests_total', l) ?? 0) - before, 5);
    assert.ok((metric(text, 'svcdns_dns_request_duration_seconds_count', { zone: 'sd.internal.', type: 'A' }) ?? 0) >= 5);
    assert.equal(metric(text, 'svcdns_dns_tcp_max_connections'), 2000, 'two threads, each with tcp.maxConnections 1000');
  });
});

// Integration tests of the admin HTTP server against the real app (real UDP/TCP DNS listeners, a real file
// backend in a temp dir): /healthz, /readyz flipping syncing → synced → stale (§5.4, §6.3), /v1/services, and
// /metrics values after known queries.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildQuery, query, rcode, udpDropped } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { metric } from '../helpers/prom-text.ts';

const WEB = `services:
  - name: web
    instances:
      - { address: 10.0.0.1, port: 8080 }
      - { address: 10.0.0.2, port: 8080 }
`;

/** A service with enough instances that an A answer cannot fit 512 bytes (§4.2): 60 × 16 B of records. */
function bigService(n = 60): string {
  const lines = ['  - name: big', '    instances:'];
  for (let i = 1; i <= n; i++) lines.push(`      - { address: 10.9.0.${i}, port: 80 }`);
  return lines.join('\n');
}

async function get(srv: TestServer, p: string): Promise<{ status: number; type: string; text: string; json: () => any }> {
  const a = srv.app.adminAddress;
  assert.ok(a, 'admin server is running');
  const res = await fetch(`http://${a.host}:${a.port}${p}`);
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json: () => JSON.parse(text) };
}

const ADMIN = { admin: { listen: '127.0.0.1:0' } };
const serve = { serveAdmin: true } as const;

describe('admin endpoints on a synced server', () => {
  let dir: string;
  let srv: TestServer;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'svcdns-admin-'));
    await writeFile(path.join(dir, 'services.yaml'), `${WEB}${bigService()}\n`);
    srv = await startServer(
      { ...ADMIN, backends: [{ type: 'file', name: 'static', path: 'services.yaml', debounceMs: 0 }] },
      { configDir: dir, extra: serve },
    );
    await waitFor(async () => rcode(await query(srv.port, 'web.service.sd.internal', 'A')) === 'NOERROR');
  });
  after(async () => {
    await srv.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('/healthz: 200 with the bound DNS addresses', async () => {
    const r = await get(srv, '/healthz');
    assert.equal(r.status, 200);
    assert.match(r.type, /^application\/json/);
    assert.equal(r.json().status, 'ok');
    assert.deepEqual(r.json().dns, [{ host: '127.0.0.1', port: srv.port }]);
  });

  it('/readyz: 200 when every backend has synced', async () => {
    const r = await get(srv, '/readyz');
    assert.equal(r.status, 200);
    const body = r.json();
    assert.equal(body.ready, true);
    assert.deepEqual(body.notSynced, []);
    assert.deepEqual(body.backends.map((b: any) => [b.name, b.state, b.stale]), [['static', 'synced', false]]);
  });

  it('/v1/services: merged view with scopes, healthy instances and source backends', async () => {
    const r = await get(srv, '/v1/services');
    assert.equal(r.status, 200);
    const body = r.json();
    const web = body.services.filter((s: any) => s.name === 'web');
    // Unscoped view (scope null) and the default scope, both from the file backend.
    assert.deepEqual(web.map((s: any) => s.scope).sort(), ['default', null].sort());
    for (const s of web) {
      assert.deepEqual(s.backends, ['static']);
      assert.deepEqual(s.instances.map((i: any) => i.address).sort(), ['10.0.0.1', '10.0.0.2']);
      assert.deepEqual(s.instances[0].ports, [{ name: null, port: 8080, protocol: 'tcp' }]);
    }
    assert.equal(body.backends[0].name, 'static');
    assert.equal(typeof body.generation, 'number');
  });

  it('unknown path 404, other methods 405', async () => {
    assert.equal((await get(srv, '/nope')).status, 404);
    const a = srv.app.adminAddress!;
    const res = await fetch(`http://${a.host}:${a.port}/metrics`, { method: 'POST' });
    await res.text();
    assert.equal(res.status, 405);
  });

  it('/metrics counts known queries: type/rcode/transport, cache, truncation, TCP, latency, backend gauges', async () => {
    const m0 = (await get(srv, '/metrics')).text;
    const base = (name: string, labels: Record<string, string> = {}) => metric(m0, name, labels) ?? 0;

    // 2 × A web (miss then hit), 1 × AAAA nope (NXDOMAIN), 1 × big A over UDP 512 (TC=1), 1 × SRV over TCP,
    // 1 × out-of-zone (REFUSED), 1 × a response sent to us (QR=1: dropped, §5.5).
    assert.equal(rcode(await query(srv.port, 'cache-me.service.sd.internal', 'A')), 'NXDOMAIN');
    assert.equal(rcode(await query(srv.port, 'web.service.sd.internal', 'A')), 'NOERROR');
    assert.equal(rcode(await query(srv.port, 'web.service.sd.internal', 'A')), 'NOERROR');
    assert.equal(rcode(await query(srv.port, 'nope.service.sd.internal', 'AAAA')), 'NXDOMAIN');
    const big = await query(srv.port, 'big.service.sd.internal', 'A');
    assert.equal((big.flags! & 0x0200) !== 0, true, 'big answer truncated over UDP without EDNS');
    assert.equal(rcode(await query(srv.port, '_web._tcp.service.sd.internal', 'SRV', { tcp: true })), 'NOERROR'); // web has no port named http (§2.2)
    assert.equal(rcode(await query(srv.port, 'example.com', 'A')), 'REFUSED');
    const resp = buildQuery('web.service.sd.internal', 'A');
    resp[2]! |= 0x80;
    assert.deepEqual(await udpDropped(srv.port, resp, buildQuery('web.service.sd.internal', 'A', { id: resp.readUInt16BE(0) ^ 1 })), [], 'a response is never answered');

    const text = (await waitFor(async () => {
      const t = (await get(srv, '/metrics')).text;
      // The TCP connection closes after the client's end: wait until the gauge is back to 0.
      return metric(t, 'svcdns_dns_tcp_connections') === 0 ? t : null;
    }))!;
    const d = (name: string, labels: Record<string, string> = {}) => (metric(text, name, labels) ?? 0) - base(name, labels);
    // web A NOERROR ×2 over UDP; the second was a cache hit (a query already cached adds hits only).
    assert.equal(d('svcdns_dns_responses_total', { type: 'A', rcode: 'NOERROR', transport: 'udp' }), 4, 'web ×2 + big + the sentinel after the dropped response');
    assert.equal(d('svcdns_dns_responses_total', { type: 'A', rcode: 'NXDOMAIN', transport: 'udp' }), 1);
    assert.equal(d('svcdns_dns_responses_total', { type: 'AAAA', rcode: 'NXDOMAIN', transport: 'udp' }), 1);
    assert.equal(d('svcdns_dns_responses_total', { type: 'SRV', rcode: 'NOERROR', transport: 'tcp' }), 1);
    assert.equal(d('svcdns_dns_responses_total', { type: 'A', rcode: 'REFUSED', transport: 'udp' }), 1);
    assert.equal(d('svcdns_dns_dropped_total', { transport: 'udp' }), 1);
    assert.equal(d('svcdns_dns_truncated_responses_total', { transport: 'udp' }), 1);
    assert.equal(d('svcdns_dns_tcp_connections_total'), 1);
    assert.equal(d('svcdns_dns_cache_hits_total') + d('svcdns_dns_cache_misses_total'), 8, 'each parsed in-zone-or-not query looks up the cache once');
    assert.ok(d('svcdns_dns_cache_hits_total') >= 1, 'the repeated web A was a hit');
    // Every response and drop was timed.
    assert.equal(d('svcdns_dns_answer_duration_seconds_count'), 9);
    assert.equal(metric(text, 'svcdns_dns_answer_duration_seconds_bucket', { le: '+Inf' }), metric(text, 'svcdns_dns_answer_duration_seconds_count'));
    // Backends.
    assert.equal(metric(text, 'svcdns_backend_instances', { backend: 'static', type: 'file' }), 62);
    assert.equal(metric(text, 'svcdns_backend_state', { backend: 'static', state: 'synced' }), 1);
    assert.ok(metric(text, 'svcdns_backend_last_sync_age_seconds', { backend: 'static' })! >= 0);
    assert.ok(metric(text, 'svcdns_backend_propagation_seconds_count', { backend: 'static' })! >= 1);
  });
});

describe('/readyz follows backend state: not synced → synced → failed (stale)', () => {
  let dir: string;
  let srv: TestServer;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'svcdns-ready-'));
    await writeFile(path.join(dir, 'a.yaml'), WEB);
    // b.yaml does not exist yet: backend "b" stays syncing and its names answer SERVFAIL (§5.4).
    srv = await startServer(
      {
        ...ADMIN,
        backends: [
          { type: 'file', name: 'a', path: 'a.yaml', debounceMs: 0 },
          { type: 'file', name: 'b', path: 'b.yaml', debounceMs: 0, defaultScope: 'bscope' },
        ],
      },
      { configDir: dir, extra: serve },
    );
  });
  after(async () => {
    await srv.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('503 naming the backend that has not synced; then 200; a failure after sync stays 200 marked stale', async () => {
    const notReady = (await waitFor(async () => {
      const r = await get(srv, '/readyz');
      return r.status === 503 && r.json().backends.find((b: any) => b.name === 'a')?.state === 'synced' ? r : null;
    }))!;
    assert.match(notReady.type, /^application\/json/);
    assert.equal(notReady.json().ready, false);
    assert.deepEqual(notReady.json().notSynced, ['b']);
    assert.equal(notReady.json().backends.find((b: any) => b.name === 'b').state, 'syncing');
    assert.equal(rcode(await query(srv.port, 'web.service.bscope.sd.internal', 'A')), 'SERVFAIL');
    let m = (await get(srv, '/metrics')).text;
    assert.equal(metric(m, 'svcdns_backend_state', { backend: 'b', state: 'syncing' }), 1);

    await writeFile(path.join(dir, 'b.yaml'), WEB);
    const ready = (await waitFor(async () => {
      const r = await get(srv, '/readyz');
      return r.status === 200 ? r : null;
    }, 5000))!;
    assert.equal(ready.json().ready, true);
    assert.deepEqual(ready.json().notSynced, []);
    assert.equal(rcode(await query(srv.port, 'web.service.bscope.sd.internal', 'A')), 'NOERROR');

    await writeFile(path.join(dir, 'b.yaml'), 'services: [ {name: "not a label!"} ]\n');
    const stale = (await waitFor(async () => {
      const r = await get(srv, '/readyz');
      return r.json().stale.includes('b') ? r : null;
    }, 5000))!;
    assert.equal(stale.status, 200, 'a stale backend keeps serving its last data: still ready (§6.3)');
    const b = stale.json().backends.find((x: any) => x.name === 'b');
    assert.equal(b.state, 'stale');
    assert.equal(b.stale, true);
    assert.equal(b.lastError.code, 'SVCDNS_BACKEND_BAD_DATA');
    assert.equal(rcode(await query(srv.port, 'web.service.bscope.sd.internal', 'A')), 'NOERROR', 'last known data still answered');
    m = (await get(srv, '/metrics')).text;
    assert.equal(metric(m, 'svcdns_backend_state', { backend: 'b', state: 'stale' }), 1);
    assert.equal(metric(m, 'svcdns_backend_instances', { backend: 'b' }), 2);
  });
});

describe('admin server configuration', () => {
  it('admin.enabled: false starts no admin server; metrics are still kept', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-noadmin-'));
    await writeFile(path.join(dir, 'services.yaml'), WEB);
    const srv = await startServer(
      { admin: { enabled: false }, backends: [{ type: 'file', path: 'services.yaml' }] },
      { configDir: dir, extra: serve },
    );
    try {
      assert.equal(srv.app.adminAddress, null);
      await waitFor(async () => rcode(await query(srv.port, 'web.service.sd.internal', 'A')) === 'NOERROR');
      assert.ok(metric(await srv.app.metrics.text(), 'svcdns_dns_responses_total', { type: 'A', rcode: 'NOERROR' })! >= 1);
    } finally {
      await srv.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an admin address in use fails the start with EADDRINUSE and releases the DNS listeners', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-adminbusy-'));
    await writeFile(path.join(dir, 'services.yaml'), WEB);
    const first = await startServer({ ...ADMIN, backends: [{ type: 'file', path: 'services.yaml' }] }, { configDir: dir, extra: serve });
    try {
      const busy = first.app.adminAddress!;
      await assert.rejects(
        startServer({ admin: { listen: `${busy.host}:${busy.port}` }, backends: [{ type: 'file', path: 'services.yaml' }] }, { configDir: dir, extra: serve }),
        (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE',
      );
    } finally {
      await first.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('admin beyond loopback logs admin_not_loopback at start (issue 13: /v1/services shows the whole registry); on loopback it does not', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-adminwarn-'));
    await writeFile(path.join(dir, 'services.yaml'), WEB);
    const started: TestServer[] = [];
    try {
      for (const [host, warned] of [['0.0.0.0', true], ['127.0.0.1', false]] as const) {
        const lines: Record<string, unknown>[] = [];
        const logger = createLogger('info', { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
        const srv = await startServer({ admin: { listen: `${host}:0` }, backends: [{ type: 'file', path: 'services.yaml' }] }, { configDir: dir, extra: { ...serve, logger } });
        started.push(srv);
        const listening = lines.findIndex((l) => l.event === 'listening');
        assert.ok(listening >= 0, 'the listening line is logged');
        const warn = lines.find((l) => l.event === 'admin_not_loopback');
        assert.equal(warn !== undefined, warned, `admin on ${host}`);
        if (warn) {
          assert.equal(warn.level, 'warn');
          assert.ok(lines.indexOf(warn) < listening, 'logged before the listening line');
        }
      }
    } finally {
      for (const s of started) await s.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

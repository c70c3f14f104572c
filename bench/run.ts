// bench/run: `npm run bench`. Throughput and latency over loopback with dnsperf, in one run, for:
//   svcdns (one process, and with workers), the ceiling (a bare Node UDP loop replaying svcdns's own answer,
//   bench/ceiling.ts), and dnsmasq serving the same records when installed;
// then propagation (store change → new answer over UDP) and scale (10k services × 10 instances).
// Figures drift on shared machines: only ratios within one run mean anything.
//
// Env: BENCH_SECONDS (default 8) per throughput run; BENCH_ONLY=throughput|propagation|scale to run one part.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildQuery, decode, udpRaw } from '../test/helpers/dns-client.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ONLY = process.env.BENCH_ONLY ?? '';
const QNAME = 'web.service.sd.internal';
const children: ChildProcess[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'svcdns-bench-'));

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  s.close();
  return p;
}

function start(cmd: string, args: string[], name: string): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  c.stderr!.on('data', (d) => (err += d));
  c.on('exit', (code, sig) => {
    if (code && code !== 0 && sig !== 'SIGTERM') process.stderr.write(`${name} exited ${code}: ${err.slice(0, 500)}\n`);
  });
  children.push(c);
  return c;
}

async function waitAnswer(port: number, name = QNAME, timeoutMs = 20_000): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await udpRaw(port, buildQuery(name, 'A', { id: 1, rd: true }), 200).catch(() => null);
    if (r && (r[3]! & 0x0f) === 0 && r.readUInt16BE(6) > 0) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no answer for ${name} on port ${port}`);
}

interface PerfResult {
  qps: number;
  lostPct: number;
  avgMs: number;
}

function dnsperf(port: number, args: string[]): string {
  const r = spawnSync('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', join(tmp, 'queries.txt'), ...args], {
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`dnsperf failed: ${r.stderr}`);
  return r.stdout;
}

function throughput(port: number, clients: number): PerfResult {
  const out = dnsperf(port, ['-c', String(clients), '-T', String(Math.min(clients, 2)), '-l', String(SECONDS), '-q', '200']);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    lostPct: num(/Queries lost:\s+\d+ \(([\d.]+)%\)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
  };
}

/** Per-query latencies at a fixed rate (dnsperf -v prints each query's latency). */
function latencyAt(port: number, qps: number): { p50: number; p99: number; p999: number; lostPct: number } {
  const out = dnsperf(port, ['-c', '1', '-l', '4', '-Q', String(Math.round(qps)), '-v']);
  const lat: number[] = [];
  let lost = 0;
  for (const line of out.split('\n')) {
    if (!line.startsWith('> ')) continue;
    const parts = line.split(/\s+/);
    if (parts[1] === 'T') lost++;
    else lat.push(Number(parts[parts.length - 1]) * 1000);
  }
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? NaN;
  return { p50: pct(0.5), p99: pct(0.99), p999: pct(0.999), lostPct: (100 * lost) / Math.max(1, lost + lat.length) };
}

const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

function servicesYaml(): string {
  // The sample's `web`, with its third instance healthy: the 3-record A answer the targets are stated for.
  return `services:
  - name: web
    instances:
      - { address: 10.0.0.1, port: 8080 }
      - { address: 10.0.0.2, port: 8080 }
      - { address: 10.0.0.3, port: 8080 }
  - name: api
    instances:
      - { address: 10.0.1.1, ports: { http: 80, grpc: 9090 } }
      - { address: "fd00::1:1", ports: { http: 80, grpc: 9090 } }
`;
}

function svcdnsConfig(port: number, servicesPath: string, workers: number | 'auto' = 1): string {
  return `listen: "127.0.0.1:${port}"
admin: { listen: "127.0.0.1:0" }
log: { level: warn }
${workers === 1 ? '' : `workers: ${workers}\n`}backends:
  - type: file
    path: ${JSON.stringify(servicesPath)}
`;
}

async function startSvcdns(port: number, servicesPath: string, workers: number | 'auto' = 1): Promise<ChildProcess> {
  const cfg = join(tmp, `svcdns-${port}.yaml`);
  writeFileSync(cfg, svcdnsConfig(port, servicesPath, workers));
  const c = start(process.execPath, ['--disable-warning=ExperimentalWarning', join(ROOT, 'src/cli.ts'), '--config', cfg], 'svcdns');
  await waitAnswer(port);
  return c;
}

function stop(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null) return Promise.resolve();
  return new Promise((r) => {
    c.once('exit', () => r());
    c.kill('SIGTERM');
  });
}

async function throughputPart(): Promise<void> {
  const servicesPath = join(tmp, 'services.yaml');
  writeFileSync(servicesPath, servicesYaml());
  writeFileSync(join(tmp, 'queries.txt'), `${QNAME} A\n`);

  const sPort = await freePort();
  const svc = await startSvcdns(sPort, servicesPath);
  const sample = await waitAnswer(sPort);
  const answers = decode(sample).answers?.length ?? 0;

  const cPort = await freePort();
  const ceiling = start(process.execPath, [join(ROOT, 'bench/ceiling.ts'), String(cPort), sample.toString('hex')], 'ceiling');
  await waitAnswer(cPort);

  let dnsmasq: ChildProcess | undefined;
  let mPort = 0;
  if (have('dnsmasq')) {
    mPort = await freePort();
    const hosts = join(tmp, 'hosts');
    writeFileSync(hosts, ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((a) => `${a} ${QNAME}`).join('\n') + '\n');
    dnsmasq = start(
      'dnsmasq',
      ['--keep-in-foreground', '--conf-file=/dev/null', `--port=${mPort}`, '--listen-address=127.0.0.1', '--bind-interfaces',
        '--no-resolv', '--no-hosts', `--addn-hosts=${hosts}`, '--pid-file=', '--user=root', '--cache-size=1000'],
      'dnsmasq',
    );
    await waitAnswer(mPort);
  }

  console.log(`\n## Throughput: dnsperf -c 1, ${SECONDS} s each, "${QNAME} A" (${answers}-record answer), loopback`);
  console.log(`machine: ${(await import('node:os')).cpus().length} cores, ${(await import('node:os')).cpus()[0]?.model ?? '?'}, Node ${process.version}`);
  const rows: [string, number, PerfResult][] = [];
  const measure = (label: string, port: number, clients = 1) => {
    throughput(port, clients); // warm-up run is not counted... keep it short
    const r = throughput(port, clients);
    rows.push([label, port, r]);
    console.log(`${label.padEnd(28)} ${f(r.qps).padStart(8)} qps   lost ${f(r.lostPct, 2)}%   avg ${f(r.avgMs, 3)} ms`);
    return r;
  };
  const s1 = measure('svcdns (1 process)', sPort);
  const ce = measure('ceiling (bare Node loop)', cPort);
  const dm = dnsmasq ? measure('dnsmasq', mPort) : undefined;
  console.log(`ratio svcdns/ceiling: ${f(s1.qps / ce.qps, 2)} (target >= 0.85)`);
  if (dm) console.log(`ratio svcdns/dnsmasq: ${f(s1.qps / dm.qps, 2)}`);
  else console.log('dnsmasq not installed (apt-get install dnsmasq-base): no C peer in this run');

  console.log(`\n## Latency at half of each server's measured maximum (dnsperf -Q, -v per-query latencies, 4 s)`);
  for (const [label, port, r] of rows) {
    const l = latencyAt(port, r.qps / 2);
    console.log(`${label.padEnd(28)} @${f(r.qps / 2).padStart(6)} qps   p50 ${f(l.p50, 3)} ms   p99 ${f(l.p99, 3)} ms   p99.9 ${f(l.p999, 3)} ms   lost ${f(l.lostPct, 2)}%`);
  }
  await stop(svc);

  console.log(`\n## Workers (reusePort): dnsperf -c 4 (four source ports; the kernel spreads flows by hash)`);
  const wPort = await freePort();
  const w = await startSvcdns(wPort, servicesPath, 'auto').catch((e: Error) => {
    console.log(`workers: could not start (${e.message})`);
    return undefined;
  });
  if (w) {
    const sw = measure('svcdns (workers: auto)', wPort, 4);
    const c4 = measure('ceiling, -c 4', cPort, 4);
    console.log(`ratio svcdns(workers)/ceiling: ${f(sw.qps / c4.qps, 2)} and vs ceiling -c 1: ${f(sw.qps / ce.qps, 2)} (target >= 1.3)`);
    await stop(w);
  }
  await stop(ceiling);
  await stop(dnsmasq);
}

async function propagationPart(): Promise<void> {
  // In one process: the real store, answerer, processor and UDP listener; a client socket queries it.
  const { startStack, put, svc, inst } = await import('../test/helpers/stack.ts');
  const s = await startStack();
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const ask = (id: number) =>
    new Promise<Buffer>((resolve) => {
      sock.once('message', (m) => resolve(m));
      sock.send(buildQuery(QNAME, 'A', { id }), s.port, '127.0.0.1');
    });
  const samples: number[] = [];
  for (let i = 0; i < 500; i++) {
    const addr = `10.9.${(i >> 8) & 255}.${i & 255}`;
    await ask(i); // warm the cache with the old answer
    const t0 = performance.now();
    put(s.store, 'bench', [svc('web', [inst(addr, [80])])]);
    for (;;) {
      const r = decode(await ask(i));
      if (r.answers?.[0]?.data === addr) break;
    }
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  console.log(`\n## Propagation: store change → new answer over UDP (500 changes, answer cached before each)`);
  console.log(`p50 ${f(samples[250]!, 3)} ms   p99 ${f(samples[495]!, 3)} ms   max ${f(samples[499]!, 3)} ms   (target p99 < 50 ms)`);
  sock.close();
  await s.stop();
}

async function scalePart(): Promise<void> {
  const N = 10_000;
  const PER = 10;
  const path = join(tmp, 'scale.json');
  const services = [];
  for (let i = 0; i < N; i++) {
    const instances = [];
    for (let j = 0; j < PER; j++) instances.push({ address: `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`, port: 8080 });
    services.push({ name: `svc-${i}`, instances });
  }
  services.push({ name: 'web', instances: [{ address: '10.255.0.1', port: 80 }] });
  writeFileSync(path, JSON.stringify({ services }));
  const port = await freePort();
  const t0 = performance.now();
  const c = await startSvcdns(port, path);
  const first = performance.now() - t0;
  await waitAnswer(port, 'svc-9999.service.sd.internal');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${c.pid}/status`, 'utf8'))?.[1] ?? NaN);
  console.log(`\n## Scale: ${N} services × ${PER} instances from a JSON services file (file backend)`);
  console.log(`first answer ${f(first)} ms after spawn (target < 5000); RSS ${f(rssKb / 1024, 1)} MB (target <= 164 MB)`);
  await stop(c);

  // Cost of one change: store swap + first answer for a one-service change, at 10 and at 10k services.
  const { Store } = await import('../src/store/store.ts');
  const { serviceKey } = await import('../src/model/service.ts');
  const { inst, svc } = await import('../test/helpers/stack.ts');
  const costAt = (n: number) => {
    const st = new Store();
    st.register('b', 'bench', () => true);
    const map = new Map<string, ReturnType<typeof svc>>();
    for (let i = 0; i < n; i++) {
      const s = svc(`svc-${i}`, Array.from({ length: PER }, (_, j) => inst(`10.${(i >> 8) & 255}.${i & 255}.${j + 1}`, [8080])));
      map.set(serviceKey(s.scope, s.name), s);
    }
    st.apply('b', { services: map, defaultScope: 'default' });
    const times: number[] = [];
    for (let k = 0; k < 2000; k++) {
      const m = new Map(map); // what a backend does: a new snapshot map, one service replaced
      const s = svc('svc-0', [inst(`10.0.0.${(k % 250) + 1}`, [8080])]);
      m.set(serviceKey(s.scope, s.name), s);
      const t = performance.now();
      st.apply('b', { services: m, defaultScope: 'default' });
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return times[1000]!;
  };
  const small = costAt(10);
  const large = costAt(N);
  console.log(`one change (store swap, median): ${f(small * 1000, 1)} µs at 10 services, ${f(large * 1000, 1)} µs at ${N} (ratio ${f(large / small, 2)}, target <= 2)`);
}

async function main(): Promise<void> {
  if (!have('dnsperf')) {
    console.error('npm run bench needs dnsperf: apt-get install dnsperf (and dnsmasq-base for the C peer)');
    process.exitCode = 1;
    return;
  }
  try {
    if (!ONLY || ONLY === 'throughput') await throughputPart();
    if (!ONLY || ONLY === 'propagation') await propagationPart();
    if (!ONLY || ONLY === 'scale') await scalePart();
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();

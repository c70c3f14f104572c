// bench/run: `npm run bench`. Throughput and latency over loopback with dnsperf, in one run, for:
//   svcdns (one process, and with workers), the ceiling (a bare Node UDP loop replaying svcdns's own answer,
//   bench/ceiling.ts), and dnsmasq serving the same records when installed;
// then propagation (store change → new answer over UDP) and scale (10k services × 10 instances).
// Figures drift on shared machines: only ratios within one run mean anything.
//
// Env: BENCH_SECONDS (default 8) per throughput run; BENCH_ONLY=throughput|propagation|scale to run one part.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildQuery, decode, udpRaw } from '../test/helpers/dns-client.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
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

/**
 * Run dnsperf with its output going to a file: with -v it prints a line per query, and a pipe that is not
 * drained fast enough stalls its receiving thread, which then reports our latency inflated by its own wait.
 */
function dnsperf(port: number, args: string[]): string {
  const out = join(tmp, 'dnsperf.out');
  const fd = openSync(out, 'w');
  try {
    const r = spawnSync('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', join(tmp, 'queries.txt'), ...args], {
      stdio: ['ignore', fd, 'pipe'],
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`dnsperf failed: ${r.stderr}`);
  } finally {
    closeSync(fd);
  }
  return readFileSync(out, 'utf8');
}

function throughput(port: number, clients: number, seconds = SECONDS): PerfResult {
  const out = dnsperf(port, ['-c', String(clients), '-T', String(Math.min(clients, 2)), '-l', String(seconds), '-q', '200']);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    lostPct: num(/Queries lost:\s+\d+ \(([\d.]+)%\)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
  };
}

/** Each target `ROUNDS` times, interleaved so drift hits all alike; the median run per target is kept. */
function measureInterleaved(targets: [string, number][], clients: number): [string, number, PerfResult][] {
  for (const [, port] of targets) throughput(port, clients, 1); // warm-up (JIT, caches)
  const runs = targets.map(() => [] as PerfResult[]);
  for (let r = 0; r < ROUNDS; r++) targets.forEach(([, port], i) => runs[i]!.push(throughput(port, clients)));
  return targets.map(([label, port], i) => {
    const sorted = [...runs[i]!].sort((a, b) => a.qps - b.qps);
    const med = sorted[Math.floor(sorted.length / 2)]!;
    console.log(`${label.padEnd(28)} ${f(med.qps).padStart(8)} qps   lost ${f(med.lostPct, 2)}%   avg ${f(med.avgMs, 3)} ms   (runs: ${runs[i]!.map((x) => f(x.qps)).join(', ')})`);
    return [label, port, med];
  });
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
  // The built server, as the container runs it (src/ with type stripping costs ~30 MB more RSS).
  const c = start(process.execPath, [join(ROOT, 'dist/cli.js'), '--config', cfg], 'svcdns');
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

  console.log(`\n## Throughput: dnsperf -c 1, ${SECONDS} s per run, ${ROUNDS} interleaved rounds (median), "${QNAME} A" (${answers}-record answer), loopback`);
  const os = await import('node:os');
  console.log(`machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}`);
  const targets: [string, number][] = [['svcdns (1 process)', sPort], ['ceiling (bare Node loop)', cPort]];
  if (dnsmasq) targets.push(['dnsmasq', mPort]);
  const rows = measureInterleaved(targets, 1);
  const s1 = rows[0]![2];
  const ce = rows[1]![2];
  const dm = rows[2]?.[2];
  console.log(`ratio svcdns/ceiling: ${f(s1.qps / ce.qps, 2)} (target >= 0.85)`);
  if (dm) console.log(`ratio svcdns/dnsmasq: ${f(s1.qps / dm.qps, 2)}`);
  else console.log('dnsmasq not installed (apt-get install dnsmasq-base): no C peer in this run');

  console.log(`\n## Latency at half of each server's measured maximum (dnsperf -Q, -v per-query latencies, 4 s)`);
  for (const [label, port, r] of rows as [string, number, PerfResult][]) {
    const l = latencyAt(port, r.qps / 2);
    console.log(`${label.padEnd(28)} @${f(r.qps / 2).padStart(6)} qps   p50 ${f(l.p50, 3)} ms   p99 ${f(l.p99, 3)} ms   p99.9 ${f(l.p999, 3)} ms   lost ${f(l.lostPct, 2)}%`);
  }
  await stop(svc);

  console.log(`\n## Workers: svcdns workers: auto (${(await import('node:os')).availableParallelism()} threads, SO_REUSEPORT), dnsperf -c 4 -T 2 (four source ports: the kernel spreads flows by hash)`);
  const wPort = await freePort();
  const w = await startSvcdns(wPort, servicesPath, 'auto').catch((e: Error) => {
    console.log(`workers: could not start (${e.message})`);
    return undefined;
  });
  if (w) {
    const wr = measureInterleaved([['svcdns (workers: auto)', wPort], ['ceiling, -c 4', cPort]], 4);
    console.log(`ratio svcdns(workers)/ceiling(-c 4): ${f(wr[0]![2].qps / wr[1]![2].qps, 2)}; vs the ceiling at -c 1: ${f(wr[0]![2].qps / ce.qps, 2)} (target >= 1.3)`);
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
  const costAt = (n: number, hint: boolean) => {
    const st = new Store();
    st.register('b', 'bench', () => true);
    const map = new Map<string, ReturnType<typeof svc>>();
    for (let i = 0; i < n; i++) {
      const s = svc(`svc-${i}`, Array.from({ length: PER }, (_, j) => inst(`10.${(i >> 8) & 255}.${i & 255}.${j + 1}`, [8080])));
      map.set(serviceKey(s.scope, s.name), s);
    }
    st.apply('b', { services: map, defaultScope: 'default' });
    const key = serviceKey('default', 'svc-0');
    const changed = new Set([key]);
    const times: number[] = [];
    for (let k = 0; k < 2000; k++) {
      // What a backend hands over: a new snapshot map with one service replaced (the copy is the backend's cost).
      const m = new Map(map);
      m.set(key, svc('svc-0', [inst(`10.0.0.${(k % 250) + 1}`, [8080])]));
      const t = performance.now();
      st.apply('b', { services: m, defaultScope: 'default', ...(hint ? { changed } : {}) });
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return times[1000]!;
  };
  for (const hint of [true, false]) {
    const small = costAt(10, hint);
    const large = costAt(N, hint);
    const how = hint ? 'with the changed-keys hint (Consul, Kubernetes backends)' : 'identity diff, no hint (file backend)';
    console.log(`one change, store swap median, ${how}: ${f(small * 1000, 1)} µs at 10 services, ${f(large * 1000, 1)} µs at ${N} (ratio ${f(large / small, 2)}, target <= 2)`);
  }
}

async function main(): Promise<void> {
  // Measure what ships: build dist/ first (tsc, ~15 s).
  const build = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (build.status !== 0) {
    console.error('build failed');
    process.exitCode = 1;
    return;
  }
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

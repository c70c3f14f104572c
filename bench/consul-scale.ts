// bench/consul-scale: the Consul backend alone at scale (issue 11 items 4 and 5), reported, never asserted.
// Runs the Consul fake in a child process with C_SERVICES services × C_PER instances (default 10,000 × 10, each
// instance with its own Service.Address), then svcdns from src/ with one `type: consul` backend (default
// maxConnections 128: ~110 blocking slots for 10,000 watches), and reports:
// - time to the first full sync and RSS of the svcdns process after it (item 4);
// - the delay of changes that are not health changes (item 5, target p99 < 5 s): an instance deregistered (the
//   A answer loses its address), a port change of every instance of a service (the SRV answer shows the new
//   port) and a node re-registered with a new address (the A answer of a service on it without a Service.Address
//   shows it; C_SAMPLES extra services, one node each), timed from the fake applying the change to the first DNS
//   answer that shows it;
// - RSS after the changes.
// Usage: npx node --disable-warning=ExperimentalWarning bench/consul-scale.ts
//   C_SERVICES, C_PER: the size; C_SAMPLES: changes of each kind (default 20); C_GAP_MS: pause between changes
//   (default 300); C_SRC: another checkout's root to run svcdns from (a before/after comparison); C_IDLE_S: the idle
//   measurement (default 10 s); C_FLIPS (200) health changes at C_FLIP_RATE (50) a second with no query, for
//   svcdns's CPU per change; C_NODE_ARGS: node flags for svcdns instead of SERVER_NODE_FLAGS; C_QPS: a steady
//   query load (dnsperf -Q, the realistic Zipf mix) during the idle and the flip measurements, so the CPU per
//   change is also measured beside answers (0: none, the default); C_CRITICAL: checks held critical from before the
//   idle measurement on (one instance each of services 0..C_CRITICAL-1; default 0), since every reply of the
//   health-state hint lists all of them.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, DnsClient, dnsperf, forkConsulFake, cleanupAll, cleanupDir, f, freePort, installCleanupHandlers, metric, percentiles, rng, rssMb, scrape, sleep, start, stopChild } from './lib.ts';
import { writeQueryFile } from './realistic.ts';
// The Node flags every shipped launcher passes (package.json start, bin shebang, Dockerfile, systemd unit).
import { SERVER_ENV, SERVER_NODE_FLAGS } from '../src/require-node.ts';

const services = Number(process.env.C_SERVICES ?? 10_000);
const per = Number(process.env.C_PER ?? 10);
const samples = Number(process.env.C_SAMPLES ?? 20);
const gapMs = Number(process.env.C_GAP_MS ?? 300);
const root = process.env.C_SRC ?? new URL('..', import.meta.url).pathname;
const D = 'sd.internal';

installCleanupHandlers();
const { child: fake, ready, call } = forkConsulFake();

const { port: consulPort } = await ready;
await call({ op: 'seed', services, per, nodes: 1000 });
// Services that answer with their node's address (no Service.Address), one node each, for the node address change.
for (let s = 0; s < samples; s++) {
  await call({ op: 'addNode', node: { name: `xnode-${s}`, address: `10.254.${s >> 8}.${s & 255}` } });
  await call({ op: 'register', spec: { id: `nodesvc-${s}-1`, service: `nodesvc-${s}`, node: `xnode-${s}`, port: 8080 } });
}
const dir = mkdtempSync(join(tmpdir(), 'svcdns-cscale-'));
cleanupDir(dir);
const port = await freePort();
const adminPort = await freePort();
writeFileSync(join(dir, 'svcdns.yaml'), [
  `listen: ["127.0.0.1:${port}"]`, 'admin:', `  listen: 127.0.0.1:${adminPort}`, 'log:', `  level: ${process.env.C_LOG_LEVEL ?? 'info'}`, 'backends:',
  '  - type: consul', `    address: 127.0.0.1:${consulPort}`, '',
].join('\n'));

const client = new DnsClient();
const t0 = performance.now();
const child = start(process.execPath, ['--disable-warning=ExperimentalWarning', ...(process.env.C_NODE_ARGS !== undefined ? process.env.C_NODE_ARGS.split(' ').filter(Boolean) : SERVER_NODE_FLAGS), join(root, 'src/cli.ts'), '--config', join(dir, 'svcdns.yaml')], 'svcdns', { cwd: root, env: { ...process.env, ...SERVER_ENV } });
// With C_LOG_LEVEL=debug: each index sweep's size and duration.
const sweeps: { probes: number; moved: number; ms: number }[] = [];
let partial = '';
child.stdout!.on('data', (d: Buffer) => {
  const lines = (partial + d.toString()).split('\n');
  partial = lines.pop()!;
  for (const l of lines) if (l.includes('consul index sweep')) sweeps.push(JSON.parse(l) as { probes: number; moved: number; ms: number });
});
const addr = (k: number, j: number) => `10.${(k >> 8) & 255}.${k & 255}.${j + 1}`;

/** Ask until `ok` holds; ms from `from`, or NaN after the hang bound. */
async function until(name: string, type: string, ok: (data: string[]) => boolean, from: number, boundMs = 120_000): Promise<number> {
  while (performance.now() - from < boundMs) {
    const r = await client.ask(port, name, type, 1000);
    if (r && r.rcode === 'NOERROR' && ok(r.data)) return performance.now() - from;
    await sleep(10);
  }
  return NaN;
}

try {
  const last = services - 1;
  const syncMs = await until(`svc-${last}.service.${D}`, 'A', (d) => d.length === per, t0, 600_000);
  await sleep(3000);
  const rssSync = rssMb(child.pid);
  const m = await scrape(adminPort);
  const heap = (n: string) => f(metric(m, n) / 1048576);
  console.log(`consul backend, ${services} services × ${per} instances`);
  console.log(`  start → full sync (svc-${last} answers ${per} addresses): ${f(syncMs)} ms`);
  console.log(`  RSS after sync: ${f(rssSync)} MB (V8 heap used ${heap('svcdns_nodejs_heap_size_used_bytes')} of ${heap('svcdns_nodejs_heap_size_total_bytes')} MB, external ${heap('svcdns_nodejs_external_memory_bytes')} MB)`);

  // Checks held critical throughout (C_CRITICAL): their services take no part in the changes below.
  const held = Number(process.env.C_CRITICAL ?? 0);
  for (let k = 0; k < held; k++) await call({ op: 'setCheck', serviceId: `svc-${k}-1`, status: 'critical' });
  if (held > 0) {
    await until(`svc-${held - 1}.service.${D}`, 'A', (d) => d.length === per - 1, performance.now());
    console.log(`  ${held} checks held critical (one instance each of svc-0..svc-${held - 1})`);
    await sleep(5000); // the reads those changes caused are over before the idle measurement
  }

  // Idle cost: CPU of svcdns and of the fake over C_IDLE_S seconds with no change and no query (the watches cycling
  // through their blocking slots), and the requests the fake answered meanwhile.
  const idleS = Number(process.env.C_IDLE_S ?? 10);
  const qps = Number(process.env.C_QPS ?? 0);
  const qfile = join(dir, 'queries.txt');
  if (qps > 0) writeQueryFile(qfile, services);
  /** C_QPS queries a second for `seconds` (resolves to the answers counted), or nothing when C_QPS is 0. */
  const load = async (seconds: number): Promise<string> => {
    if (qps <= 0) return '';
    const r = await dnsperf(port, qfile, join(dir, 'dnsperf.out'), ['-c', '1', '-Q', String(qps), '-l', String(Math.max(1, Math.round(seconds)))], false);
    return `, beside ${f(r.qps)} answers/s (C_QPS ${qps})`;
  };
  if (qps > 0) await load(6); // warm-up: the answer cache filled and the code compiled before anything is measured
  // Settled at once (awaited later): a dnsperf that fails meanwhile must not be an unhandled rejection.
  const settledLoad = (seconds: number): Promise<string> => load(seconds).catch((e: unknown) => `, the query load failed: ${(e as Error).message}`);
  const idleLoad = settledLoad(idleS);
  const cpu0 = cpuSeconds(child.pid);
  const fcpu0 = cpuSeconds(fake.pid);
  const req0 = metric(await scrape(adminPort), 'svcdns_backend_requests_total');
  const [gcN0, gcS0] = [metric(await scrape(adminPort), 'svcdns_nodejs_gc_duration_seconds_count'), metric(await scrape(adminPort), 'svcdns_nodejs_gc_duration_seconds_sum')];
  await sleep(idleS * 1000);
  const idleNote = await idleLoad;
  /** svcdns's CPU a second while idle (with C_QPS: while answering only), to tell each change's own cost. */
  const idleRate = (cpuSeconds(child.pid) - cpu0) / idleS;
  const req1 = metric(await scrape(adminPort), 'svcdns_backend_requests_total');
  const gc = (mm: Map<string, number>): [number, number] => [metric(mm, 'svcdns_nodejs_gc_duration_seconds_count'), metric(mm, 'svcdns_nodejs_gc_duration_seconds_sum')];
  const [gcN1, gcS1] = gc(await scrape(adminPort));
  console.log(`  GC during the idle time: ${f(gcN1 - gcN0)} collections, ${f((gcS1 - gcS0) * 1000)} ms`);
  console.log(`  idle ${idleS} s (no change${qps > 0 ? '' : ', no query'}): svcdns CPU ${f((100 * (cpuSeconds(child.pid) - cpu0)) / idleS, 1)} %, the fake's ${f((100 * (cpuSeconds(fake.pid) - fcpu0)) / idleS, 1)} % of one core` +
    (Number.isFinite(req1 - req0) ? `, ${f((req1 - req0) / idleS)} backend requests/s` : '') + idleNote);

  // Health changes alone (C_FLIPS of them, C_FLIP_RATE a second, no query): svcdns's CPU per change.
  const flips = Number(process.env.C_FLIPS ?? 200);
  const flipRate = Number(process.env.C_FLIP_RATE ?? 50);
  // Services a change below has used; the flips' services too, so a deregistration is never timed on a service
  // with an instance the flips left critical (its A answer would never be `per - 1` addresses: "not seen").
  const used = new Set<number>();
  for (let k = 0; k < held; k++) used.add(k);
  if (flips > 0) {
    const flipLoad = settledLoad(flips / flipRate + 2);
    const fr = rng(7);
    const c0 = cpuSeconds(child.pid);
    const fc0 = cpuSeconds(fake.pid);
    const w0 = performance.now();
    const critical = new Set<string>();
    for (let i = 0; i < flips; i++) {
      const fk = held + Math.floor(fr() * (services - held));
      used.add(fk);
      const id = `svc-${fk}-${1 + Math.floor(fr() * per)}`;
      const down = !critical.has(id);
      if (down) critical.add(id); else critical.delete(id);
      await call({ op: 'setCheck', serviceId: id, status: down ? 'critical' : 'passing' });
      const due = w0 + ((i + 1) * 1000) / flipRate;
      if (due > performance.now()) await sleep(due - performance.now());
    }
    await sleep(2000); // let the last ones land
    const wall = (performance.now() - w0) / 1000;
    const cpu = cpuSeconds(child.pid) - c0;
    const flipNote = await flipLoad;
    console.log(`  ${flips} health changes at ${flipRate}/s${qps > 0 ? '' : ' (no query)'}: svcdns CPU ${f((100 * cpu) / wall, 1)} % of one core over ${f(wall, 1)} s ` +
      `(${f((1000 * cpu) / flips, 2)} ms a change with the idle cost, ${f((1000 * (cpu - idleRate * wall)) / flips, 2)} ms beyond the idle phase's CPU), the fake's ${f((100 * (cpuSeconds(fake.pid) - fc0)) / wall, 1)} %${flipNote}`);
  }

  const rand = rng(11);
  const pick = () => {
    for (;;) {
      const k = Math.floor(rand() * services);
      if (!used.has(k)) return used.add(k), k;
    }
  };
  const dereg: number[] = [];
  const ports: number[] = [];
  const nodeMoves: number[] = [];
  let lostDereg = 0;
  let lostPort = 0;
  let lostNode = 0;
  // Node moves first: an index sweep still running after a port change would find the moved service index too.
  for (let s = 0; s < samples; s++) {
    // A node re-registered with a new address: neither a check nor the catalog's services index moves.
    const moved = `10.253.${s >> 8}.${s & 255}`;
    const t = performance.now();
    await call({ op: 'setNodeAddress', node: { name: `xnode-${s}`, address: moved } });
    const d3 = await until(`nodesvc-${s}.service.${D}`, 'A', (d) => d.length === 1 && d[0] === moved, t);
    if (Number.isNaN(d3)) lostNode++;
    else nodeMoves.push(d3);
    await sleep(gapMs);
  }
  for (let s = 0; s < samples; s++) {
    // An instance deregistered: the service stays in the catalog with one address fewer.
    const k = pick();
    const j = Math.floor(rand() * per);
    const gone = addr(k, j);
    let t = performance.now();
    await call({ op: 'deregister', serviceId: `svc-${k}-${j + 1}` });
    const d1 = await until(`svc-${k}.service.${D}`, 'A', (d) => d.length === per - 1 && !d.includes(gone), t);
    if (Number.isNaN(d1)) lostDereg++;
    else dereg.push(d1);
    await sleep(gapMs);

    // A port change of every instance of another service.
    const k2 = pick();
    t = performance.now();
    for (let i = 0; i < per; i++) {
      await call({ op: 'register', spec: { id: `svc-${k2}-${i + 1}`, service: `svc-${k2}`, node: `node-${(k2 * per + i) % 1000}`, address: addr(k2, i), port: 9090, tags: ['http'] } });
    }
    const d2 = await until(`svc-${k2}.service.${D}`, 'SRV', (d) => d.length === per && d.every((x) => x.startsWith('9090 ')), t);
    if (Number.isNaN(d2)) lostPort++;
    else ports.push(d2);
    await sleep(gapMs);
  }
  const show = (what: string, xs: number[], lost: number) => {
    const p = percentiles(xs);
    console.log(`  ${what}: p50 ${f(p.p50)} ms, p99 ${f(p.p99)} ms, max ${f(p.max)} ms (n=${p.n}${lost ? `, ${lost} not seen within 120 s` : ''})`);
  };
  show('instance deregistered → A answer without it', dereg, lostDereg);
  show('port change of a service → SRV answer with the new port', ports, lostPort);
  show('node re-registered with a new address → A answer of its service with it', nodeMoves, lostNode);
  console.log(`  RSS after the changes: ${f(rssMb(child.pid))} MB`);
  if (sweeps.length > 0) {
    const p = percentiles(sweeps.map((x) => x.ms));
    const probes = percentiles(sweeps.map((x) => x.probes));
    console.log(`  index sweeps: ${sweeps.length}, duration p50 ${f(p.p50)} ms, max ${f(p.max)} ms, probes p50 ${f(probes.p50)} each`);
  }
} finally {
  client.close();
  await stopChild(child);
  await Promise.race([call({ op: 'close' }), sleep(3000)]);
  fake.kill();
  await cleanupAll();
}

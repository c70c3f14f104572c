// bench/run: `npm run bench`. Builds the server into a temporary directory (never a dist/ in the repo), runs it
// from there over loopback only, and reports — never asserts — in one run:
//   1. one hot name (`web.service.sd.internal A`): svcdns (one thread, workers), the ceiling (a bare Node UDP loop,
//      bench/ceiling.ts) and dnsmasq when installed;
//   2. propagation inside one process (store change → new answer over UDP);
//   3. scale: one change at 10 vs 10k services (store swap);
//   4. the realistic load (bench/realistic.ts): 10k services × 10 endpoints from the file backend, the Kubernetes
//      API fake and the Consul fake, Zipf-like queries, readiness flips through the fakes at 0/10/50 changes/s,
//      NSD on the same names; propagation at that size; file reload time and the DNS stall during it.
// Every process it starts is stopped at the end, on failure and on Ctrl-C. Figures drift on shared machines:
// only ratios within one run mean anything.
//
// Env: BENCH_ONLY=one-name,propagation,scale,file,kubernetes,consul,nsd (comma list; default all);
//      BENCH_SECONDS (5) and BENCH_ROUNDS (3) for the one-name runs; BENCH_PHASE_SECONDS (8) per realistic load
//      phase, BENCH_REALISTIC_ROUNDS (3) interleaved rounds of them (medians reported); BENCH_SERVICES (10000) and BENCH_ENDPOINTS (10) for the realistic size; BENCH_REF=<git revision>
//      measures that commit's server (git archive) instead of the working tree (the in-process parts 2 and 3
//      always use the working tree's src/); BENCH_SVCDNS_ARGS: extra node flags for the realistic part's svcdns
//      processes ("--cpu-prof --cpu-prof-dir=/tmp/prof", "--max-semi-space-size=1"); BENCH_SVCDNS_ENV: extra
//      environment for them, after the launchers' own (SERVER_ENV): "MALLOC_ARENA_MAX=" measures without it;
//      BENCH_REALISTIC_RATES (0,10,50): the change rates of the realistic rounds; BENCH_DEBUG_GC=1: after each
//      phase, the server's CPU by thread and its collections by kind.

import { spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as dnsPacket from 'dns-packet';
import {
  cleanupAll, cleanupDir, DnsClient, dnsperf, f, PIN, freePort, have, installCleanupHandlers, memoryBreakdown, memoryLine, percentiles, propagationMetric, rng, rssMb, scrape, sleep,
  start, stopChild, table, waitReply, type PerfRun,
} from './lib.ts';
import {
  Readiness, addr, alternatingLine, loadPhase, medianRow, perCpu, realisticTable, warmArgs, runRegistry, startNsd, startSvcdns, synced, writeQueryFile,
  type BackendResult, type Nsd, type RealisticConfig, type Reference, type Row,
} from './realistic.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PARTS = new Set((process.env.BENCH_ONLY ?? 'one-name,propagation,scale,file,kubernetes,consul,nsd').split(',').map((s) => s.trim()));
const QNAME = 'web.service.sd.internal';
const REF = process.env.BENCH_REF ?? '';

installCleanupHandlers();
const tmp = mkdtempSync(join(tmpdir(), 'svcdns-bench-'));
cleanupDir(tmp);
/** The built CLI, in the temporary build directory. */
const CLI = join(tmp, 'build', 'dist', 'cli.js');

/**
 * tsc into <tmp>/build/dist, with the package.json (type: module, version) and a link to node_modules beside it.
 * BENCH_REF=<git revision> builds that commit's src/ (from `git archive`) instead of the working tree.
 */
function build(): boolean {
  const out = join(tmp, 'build');
  mkdirSync(out, { recursive: true });
  let tree = ROOT;
  if (REF) {
    tree = join(tmp, 'tree');
    mkdirSync(tree);
    const files = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];
    const a = spawnSync('sh', ['-c', 'git -C "$1" archive --format=tar "$2" "$3" "$4" "$5" "$6" | tar -x -C "$7"', 'sh', ROOT, REF, ...files, tree], { stdio: 'inherit' });
    if (a.status !== 0) return false;
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'), 'dir');
  }
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(tree, 'tsconfig.build.json'), '--outDir', join(out, 'dist')], { stdio: 'inherit' });
  if (r.status !== 0) return false;
  copyFileSync(join(tree, 'package.json'), join(out, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'), 'dir');
  return true;
}

// ---- 1. one hot name ----

async function throughput(port: number, clients: number, seconds = SECONDS): Promise<PerfRun> {
  return dnsperf(port, join(tmp, 'one-name.txt'), join(tmp, 'dnsperf.out'), ['-c', String(clients), '-T', String(Math.min(clients, 2)), '-l', String(seconds), '-q', '200'], false);
}

/** Each target `ROUNDS` times, interleaved so drift hits all alike; the median run per target is kept. */
async function measureInterleaved(targets: [string, number][], clients: number): Promise<[string, number, PerfRun][]> {
  for (const [, port] of targets) await throughput(port, clients, 1); // warm-up (JIT, caches)
  const runs = targets.map(() => [] as PerfRun[]);
  for (let r = 0; r < ROUNDS; r++) for (const [i, [, port]] of targets.entries()) runs[i]!.push(await throughput(port, clients));
  return targets.map(([label, port], i) => {
    const sorted = [...runs[i]!].sort((a, b) => a.qps - b.qps);
    const med = sorted[Math.floor(sorted.length / 2)]!;
    console.log(`${label.padEnd(28)} ${f(med.qps).padStart(8)} qps   lost ${f(med.lostPct, 2)}%   avg ${f(med.avgMs, 3)} ms   (runs: ${runs[i]!.map((x) => f(x.qps)).join(', ')})`);
    return [label, port, med];
  });
}

/** Per-query latencies at a fixed rate (dnsperf -v prints each query's latency). */
async function latencyAt(port: number, qps: number): Promise<PerfRun> {
  return dnsperf(port, join(tmp, 'one-name.txt'), join(tmp, 'dnsperf-lat.out'), ['-c', '1', '-l', '4', '-Q', String(Math.round(qps))], true);
}

const ONE_NAME_SERVICES = `services:
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

async function startFileSvcdns(dir: string, servicesPath: string, extra = ''): Promise<{ child: ChildProcess; port: number; admin: number }> {
  mkdirSync(dir, { recursive: true });
  const cfg: RealisticConfig = { ...realisticConfig(), tmp };
  return startSvcdns(cfg, dir, `  - type: file\n    path: ${JSON.stringify(servicesPath)}\n`, {}, extra);
}

async function oneNamePart(client: DnsClient): Promise<void> {
  const servicesPath = join(tmp, 'one-name-services.yaml');
  writeFileSync(servicesPath, ONE_NAME_SERVICES);
  writeFileSync(join(tmp, 'one-name.txt'), `${QNAME} A\n`);
  const full = (r: { rcode: string; data: string[] }) => r.rcode === 'NOERROR' && r.data.length === 3;

  const s = await startFileSvcdns(join(tmp, 'one-name'), servicesPath);
  const sample = await waitReply(client, s.port, QNAME, 'A', full, 60_000);
  // The ceiling replays svcdns's own answer to a query without EDNS (what dnsperf sends here).
  const plain = await askPlain(s.port, QNAME);

  const cPort = await freePort();
  const ceiling = start(process.execPath, [join(ROOT, 'bench/ceiling.ts'), String(cPort), plain.toString('hex')], 'ceiling');
  await waitReply(client, cPort, QNAME, 'A', () => true, 20_000);

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
    await waitReply(client, mPort, QNAME, 'A', full, 20_000);
  }

  console.log(`\n## One name: dnsperf -c 1, ${SECONDS} s per run, ${ROUNDS} interleaved rounds (median), "${QNAME} A" (${sample.data.length}-record answer), loopback`);
  const targets: [string, number][] = [['svcdns (1 process)', s.port], ['ceiling (bare Node loop)', cPort]];
  if (dnsmasq) targets.push(['dnsmasq', mPort]);
  const rows = await measureInterleaved(targets, 1);
  const s1 = rows[0]![2];
  const ce = rows[1]![2];
  const dm = rows[2]?.[2];
  console.log(`ratio svcdns/ceiling: ${f(s1.qps / ce.qps, 2)} (target >= 0.85)`);
  if (dm) console.log(`ratio svcdns/dnsmasq: ${f(s1.qps / dm.qps, 2)}`);
  else console.log('dnsmasq not installed (apt-get install dnsmasq-base): no C peer in this run');

  console.log(`\n## One name: latency at half of each server's measured maximum (dnsperf -Q, -v per-query latencies, 4 s)`);
  for (const [label, port, r] of rows) {
    const l = await latencyAt(port, r.qps / 2);
    console.log(`${label.padEnd(28)} @${f(r.qps / 2).padStart(6)} qps   p50 ${f(l.p50Ms, 3)} ms   p99 ${f(l.p99Ms, 3)} ms   lost ${f(l.lostPct, 2)}%`);
  }
  await stopChild(s.child);

  console.log(`\n## One name: svcdns workers: auto (${os.availableParallelism()} threads, SO_REUSEPORT), dnsperf -c 4 -T 2 (four source ports: the kernel spreads flows by hash)`);
  const w = await startFileSvcdns(join(tmp, 'workers'), servicesPath, 'workers: auto\n');
  const ok = await waitReply(client, w.port, QNAME, 'A', full, 60_000).then(() => true, (e: Error) => {
    console.log(`workers: could not start (${e.message})`);
    return false;
  });
  if (ok) {
    const wr = await measureInterleaved([['svcdns (workers: auto)', w.port], ['ceiling, -c 4', cPort]], 4);
    console.log(`ratio svcdns(workers)/ceiling(-c 4): ${f(wr[0]![2].qps / wr[1]![2].qps, 2)}; vs the ceiling at -c 1: ${f(wr[0]![2].qps / ce.qps, 2)} (target >= 1.3)`);
  }
  await stopChild(w.child);
  await stopChild(ceiling);
  await stopChild(dnsmasq);
}

/** One query without EDNS, raw reply. */
function askPlain(port: number, name: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => { sock.close(); reject(new Error(`no reply from ${port}`)); }, 5000);
    sock.on('message', (m) => { clearTimeout(timer); sock.close(); resolve(m); });
    sock.send(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] }), port, '127.0.0.1');
  });
}

// ---- 2. propagation inside one process ----

async function propagationPart(): Promise<void> {
  // In one process: the real store, answerer, processor and UDP listener; a client socket queries it.
  const { startStack, put, svc, inst } = await import('../test/helpers/stack.ts');
  const s = await startStack();
  const client = new DnsClient();
  try {
    const samples: number[] = [];
    for (let i = 0; i < 500; i++) {
      const a = `10.9.${(i >> 8) & 255}.${i & 255}`;
      await client.ask(s.port, QNAME, 'A'); // warm the cache with the old answer
      const t0 = performance.now();
      put(s.store, 'bench', [svc('web', [inst(a, [80])])]);
      for (;;) {
        const r = await client.ask(s.port, QNAME, 'A');
        if (r?.data[0] === a) break;
      }
      samples.push(performance.now() - t0);
    }
    const p = percentiles(samples);
    console.log(`\n## Propagation in one process: store change → new answer over UDP (500 changes, answer cached before each)`);
    console.log(`p50 ${f(p.p50, 3)} ms   p99 ${f(p.p99, 3)} ms   max ${f(p.max, 3)} ms   (target p99 < 50 ms)`);
  } finally {
    client.close();
    await s.stop();
  }
}

// ---- 3. one change at 10 vs 10k services (store swap) ----

async function scalePart(): Promise<void> {
  const N = 10_000;
  const PER = 10;
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
  console.log(`\n## Scale: one change, store swap median (in process, ${PER} instances per service)`);
  for (const hint of [true, false]) {
    const small = costAt(10, hint);
    const large = costAt(N, hint);
    const how = hint ? 'with the changed-keys hint (Consul, Kubernetes backends)' : 'identity diff, no hint (file backend)';
    console.log(`${how}: ${f(small * 1000, 1)} µs at 10 services, ${f(large * 1000, 1)} µs at ${N} (ratio ${f(large / small, 2)}, target <= 2)`);
  }
}

// ---- 4. realistic ----

/** BENCH_REALISTIC_RATES: change rates per second, comma-separated, each a number >= 0 (a bad one says which). */
function realisticRates(text: string): number[] {
  const rates = text.split(',').map((r) => r.trim());
  for (const r of rates) {
    if (r === '' || !Number.isFinite(Number(r)) || Number(r) < 0) {
      throw new Error(`BENCH_REALISTIC_RATES=${JSON.stringify(text)}: "${r}" is not a change rate (a number >= 0, e.g. 0,10,50)`);
    }
  }
  return rates.map(Number);
}

function realisticConfig(): RealisticConfig {
  return {
    tmp,
    cli: CLI,
    services: Number(process.env.BENCH_SERVICES ?? 10_000),
    perService: Number(process.env.BENCH_ENDPOINTS ?? 10),
    phaseSeconds: Number(process.env.BENCH_PHASE_SECONDS ?? 8),
    warmSeconds: 60,
    rates: realisticRates(process.env.BENCH_REALISTIC_RATES ?? '0,10,50'),
    rounds: Math.max(1, Math.floor(Number(process.env.BENCH_REALISTIC_ROUNDS ?? 3)) || 1),
    outstanding: 20,
    altSeconds: Number(process.env.BENCH_ALT_SECONDS ?? 64),
    altWindowSeconds: 4,
    propagationSamples: 100,
  };
}

function servicesJson(services: number, per: number, moved?: { k: number; address: string }): string {
  const list = [];
  for (let k = 0; k < services; k++) {
    const instances = [];
    for (let j = 0; j < per; j++) instances.push({ address: moved?.k === k && j === 0 ? moved.address : addr(k, j), ports: { http: 8080 } });
    list.push({ name: `svc-${k}`, instances });
  }
  return JSON.stringify({ services: list });
}

interface FileResult {
  readonly backend: BackendResult;
  readonly missRow: Row;
  readonly notes: string[];
}

/** Distinct names that exist nowhere (NXDOMAIN): every query is an answer-cache miss (issue 11 item 6). */
function writeMissFile(path: string, lines = 300_000): void {
  const rand = rng(33);
  const out: string[] = [];
  for (let i = 0; i < lines; i++) out.push(`m${i}-${Math.floor(rand() * 1e9).toString(36)}.service.sd.internal A`);
  writeFileSync(path, out.join('\n') + '\n');
}

/** File backend at the realistic size (0 changes/s), then reload time of a changed file and the DNS stall meanwhile. */
async function filePart(cfg: RealisticConfig, qfile: string, client: DnsClient, reference: Reference): Promise<FileResult> {
  const dir = join(tmp, 'file');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'services.json');
  writeFileSync(path, servicesJson(cfg.services, cfg.perService));
  const state = new Readiness(cfg.services, cfg.perService);
  const t0 = performance.now();
  const s = await startSvcdns(cfg, dir, `  - type: file\n    path: ${JSON.stringify(path)}\n`);
  const notes: string[] = [];
  try {
    await synced(client, s.port, state, s.child);
    const syncMs = performance.now() - t0;
    const rssAfterSyncMb = rssMb(s.child.pid);
    notes.push(`file memory after sync (MB): ${memoryLine(await memoryBreakdown(s.admin, s.child.pid))}`);
    console.log(`file: svcdns answered every service ${f(syncMs / 1000, 1)} s after spawn (${cfg.services} × ${cfg.perService} JSON); RSS ${f(rssAfterSyncMb)} MB`);
    await dnsperf(s.port, qfile, join(tmp, 'warm-file.out'), warmArgs(cfg), false, 'client');
    // Interleaved rounds of svcdns and NSD (the medians are what the table and the ratios use).
    const fileRows: Row[] = [];
    const refs: Row[] = [];
    for (let round = 1; round <= cfg.rounds; round++) {
      const r = await loadPhase(cfg, 'svcdns file', s.port, s.admin, s.child.pid, qfile, null, cfg.phaseSeconds, null, null);
      fileRows.push(r);
      console.log(`  round ${round}, 0/s: ${f(r.perf.qps)} qps, hit ${f(r.hitPct, 1)} %, p50 ${f(r.perf.p50Ms, 3)} ms, p99 ${f(r.perf.p99Ms, 3)} ms, rcodes ${JSON.stringify(r.perf.rcodes)}, server CPU ${f(r.cpuS, 1)} s of which GC ${f(r.gcS ?? NaN, 2)} s (${f(r.fullGcs ?? NaN)} full); host steal ${f(r.stealPct, 1)} %`);
      const nsdRow = await reference('file');
      if (nsdRow) refs.push(nsdRow);
    }
    const row = medianRow(fileRows);
    const ref = refs.length > 0 ? medianRow(refs) : null;
    const rssAfterLoadMb = rssMb(s.child.pid);
    notes.push(`file memory after the load phase (MB): ${memoryLine(await memoryBreakdown(s.admin, s.child.pid))}`);
    const missFile = join(tmp, 'miss.txt');
    writeMissFile(missFile);
    const missRow = await loadPhase(cfg, 'svcdns file, miss-only', s.port, s.admin, s.child.pid, missFile, null, cfg.phaseSeconds, null, null);
    console.log(`  miss-only (distinct unknown names, NXDOMAIN): ${f(missRow.perf.qps)} qps, hit ${f(missRow.hitPct, 1)} %, p50 ${f(missRow.perf.p50Ms, 3)} ms, p99 ${f(missRow.perf.p99Ms, 3)} ms, rcodes ${JSON.stringify(missRow.perf.rcodes)}`);

    // Reload: one instance of one service moves; time from the write to the new answer, and the longest DNS round
    // trip seen meanwhile (the event loop stalls while the file is parsed and validated).
    const times: number[] = [];
    const stalls: number[] = [];
    const m0 = await scrape(s.admin);
    for (let i = 0; i < 3; i++) {
      const k = (1000 + i) % cfg.services;
      const moved = `10.251.${i}.1`;
      const text = servicesJson(cfg.services, cfg.perService, { k, address: moved });
      const name = `svc-${k}.service.sd.internal`;
      await client.ask(s.port, name, 'A');
      const w0 = performance.now();
      writeFileSync(path, text);
      let worst = 0;
      for (;;) {
        const r = await client.ask(s.port, name, 'A', 60_000);
        if (r) worst = Math.max(worst, r.ms);
        if (r?.data.includes(moved)) break;
        if (performance.now() - w0 > 120_000) throw new Error('file reload not seen within 120 s');
      }
      times.push(performance.now() - w0);
      stalls.push(worst);
      // Restore so the next round changes a different service against the same base.
      writeFileSync(path, servicesJson(cfg.services, cfg.perService));
      await waitReply(client, s.port, name, 'A', (r) => r.data.join() === state.expectedA(k).join(), 120_000);
    }
    const t = percentiles(times);
    notes.push(`file reload at ${cfg.services} × ${cfg.perService} (${f(text_mb(cfg), 1)} MB JSON, one instance moved): write → new answer ${times.map((x) => f(x)).join(', ')} ms (median ${f(t.p50)} ms); longest DNS round trip meanwhile ${stalls.map((x) => f(x)).join(', ')} ms (issue 11 item 7: stall <= 50 ms)`);
    notes.push(`file ${propagationMetric(m0, await scrape(s.admin), 'file')}`);
    return { backend: { name: 'file', rows: ref ? [row, ref] : [row], syncMs, rssAfterSyncMb, rssAfterLoadMb, notes: [] }, missRow, notes };
  } finally {
    await stopChild(s.child);
  }
}

function text_mb(cfg: RealisticConfig): number {
  return servicesJson(cfg.services, cfg.perService).length / 1e6;
}

/** The small sample-size file the tests used (they asserted reload < 500 ms): edit → new answer, 20 edits. */
async function smallFileReload(client: DnsClient): Promise<string> {
  const dir = join(tmp, 'file-small');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'services.yaml');
  const text = (a: string) => `services:\n  - name: web\n    instances:\n      - { address: 10.0.0.1, port: 80 }\n      - { address: ${a}, port: 80 }\n  - name: db\n    instances:\n      - { address: 10.0.2.1, port: 5432 }\n`;
  writeFileSync(path, text('10.0.0.2'));
  const s = await startFileSvcdns(dir, path);
  try {
    await waitReply(client, s.port, QNAME, 'A', (r) => r.data.includes('10.0.0.2'), 60_000);
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const a = `10.0.3.${i + 1}`;
      const t0 = performance.now();
      writeFileSync(path, text(a));
      await waitReply(client, s.port, QNAME, 'A', (r) => r.data.includes(a), 20_000);
      times.push(performance.now() - t0);
      await sleep(150); // past the debounce, so each edit is its own reload
    }
    const p = percentiles(times);
    return `file reload, small YAML file (debounceMs 100, the default): write → new answer p50 ${f(p.p50)} ms, p99 ${f(p.p99)} ms, max ${f(p.max)} ms over ${p.n} edits (the tests asserted < 500 ms)`;
  } finally {
    await stopChild(s.child);
  }
}

async function realisticPart(client: DnsClient): Promise<void> {
  const cfg = realisticConfig();
  const qfile = join(tmp, 'realistic.txt');
  const q = writeQueryFile(qfile, cfg.services);
  console.log(`\n## Realistic: ${cfg.services} services × ${cfg.perService} endpoints; dnsperf -c 1 -e -q ${cfg.outstanding}, ${cfg.phaseSeconds} s per phase after a warm-up pass over the whole query file, ${cfg.rounds} interleaved rounds; ${PIN ? 'BENCH_PIN=1: servers on the last CPU, dnsperf on the first' : 'not pinned to CPUs (BENCH_PIN=1 pins)'}`);
  console.log(`queries: Zipf s=1 over every service, ${q.a + q.srv + q.aaaa} lines (${q.distinct} distinct): ${f((100 * q.a) / (q.a + q.srv + q.aaaa))} % A, ${f((100 * q.srv) / (q.a + q.srv + q.aaaa))} % SRV (_http._tcp), ${f((100 * q.aaaa) / (q.a + q.srv + q.aaaa))} % AAAA (NODATA)`);
  console.log('changes: one endpoint\'s readiness flipped through the fake\'s API (Kubernetes: the EndpointSlice re-applied; Consul: the instance\'s check passing ↔ critical), uniform over services and endpoints');

  const rows: Row[] = [];
  const backends: BackendResult[] = [];
  const notes: string[] = [];
  let nsdMissing = '';
  // NSD runs for the whole part and is measured right after each backend's 0 changes/s phase (adjacent runs).
  let nsd: Nsd | null = null;
  if (PARTS.has('nsd')) {
    const r = await startNsd(cfg, qfile);
    if (typeof r === 'string') {
      nsdMissing = r;
      console.log(r);
    } else nsd = r;
  }
  const reference: Reference = async (label) => (nsd ? nsd.measure(label) : null);
  try {
    if (PARTS.has('file')) {
      const r = await filePart(cfg, qfile, client, reference);
      backends.push(r.backend);
      rows.push(...r.backend.rows, r.missRow);
      notes.push(...r.notes);
      notes.push(await smallFileReload(client));
    }
    for (const kind of ['kubernetes', 'consul'] as const) {
      if (!PARTS.has(kind)) continue;
      const r = await runRegistry(kind, cfg, qfile, reference);
      backends.push(r);
      rows.push(...r.rows);
      notes.push(...r.notes);
    }
    if (nsd && backends.length === 0) rows.push(await nsd.measure('nothing'));
  } finally {
    await nsd?.stop();
  }

  console.log(`\n## Realistic: results (latency at saturation with ${cfg.outstanding} queries outstanding, so it includes queueing;`);
  console.log('server CPU = CPU time of the server process(es) ÷ phase time, 100 % = one core; answers per CPU-s holds better than qps when other work takes cores)');
  console.log(realisticTable(rows));
  console.log('\nRSS of the svcdns process (MB):');
  console.log(table(['backend', 'answering every service after', 'RSS after sync', 'RSS after the load phases', 'target'],
    backends.map((b) => [b.name, `${f(b.syncMs / 1000, 1)} s`, f(b.rssAfterSyncMb, 1), f(b.rssAfterLoadMb, 1), '<= 164'])));
  console.log(`\nRatios in this run (issue 11 done-when; reported, not asserted), of the medians of ${cfg.rounds} interleaved rounds:`);
  if (nsdMissing) console.log(`- ${nsdMissing}: no svcdns ÷ NSD ratio`);
  for (const b of backends) {
    const at = (rate: number) => b.rows.find((r) => r.rate === rate && !r.server.startsWith('NSD'));
    const r0 = at(0);
    const nsdRow = b.rows.find((r) => r.server.startsWith('NSD'));
    const r50 = at(50);
    const parts: string[] = [];
    /** Each round's ratio, from the rows' per-round qps (the medians come from rounds interleaved in time). */
    const perRound = (a: Row, b: Row) => (a.roundsQps && b.roundsQps && a.roundsQps.length > 1 ? `; by round ${a.roundsQps.map((q, i) => f(q / b.roundsQps![i]!, 2)).join(', ')}` : '');
    if (r0 && r50) {
      parts.push(`qps at 50/s ÷ qps at 0/s = ${f(r50.perf.qps / r0.perf.qps, 2)} (target >= 0.9; per server CPU second: ${f(perCpu(r50) / perCpu(r0), 2)}${perRound(r50, r0)})`);
      parts.push(`changes applied at 50/s ${r50.issued}/${r50.asked} = ${f((100 * r50.issued) / Math.max(1, r50.asked))} % issued through the fake, final answers ${r50.converged} (target >= 90 %)`);
    }
    if (r0 && nsdRow) parts.push(`qps at 0/s ÷ NSD (each NSD round right after svcdns's 0/s phase) = ${f(r0.perf.qps / nsdRow.perf.qps, 2)} (target >= 0.5; per server CPU second: ${f(perCpu(r0) / perCpu(nsdRow), 2)}${perRound(r0, nsdRow)})`);
    if (b.alternating) parts.push(alternatingLine(b.alternating));
    if (parts.length) console.log(`- ${b.name}: ${parts.join('; ')}`);
  }
  if (notes.length) {
    console.log('\nPropagation and reload (reported, not asserted):');
    for (const n of notes) console.log(`- ${n}`);
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  if (!have('dnsperf')) {
    console.error('npm run bench needs dnsperf: apt-get install dnsperf (and dnsmasq-base for the C peer, nsd for the NSD column)');
    process.exitCode = 1;
    return;
  }
  console.log(`machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log(`building ${REF ? `git revision ${REF} (${spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', REF], { encoding: 'utf8' }).stdout.trim()})` : 'the working tree'} into ${join(tmp, 'build')} (tsc; the repository's dist/ is neither written nor used)`);
  if (!build()) {
    console.error('build failed');
    process.exitCode = 1;
    return;
  }
  const client = new DnsClient();
  try {
    if (PARTS.has('one-name')) await oneNamePart(client);
    if (PARTS.has('propagation')) await propagationPart();
    if (PARTS.has('scale')) await scalePart();
    if (['file', 'kubernetes', 'consul', 'nsd'].some((p) => PARTS.has(p))) await realisticPart(client);
    if (PARTS.has('amplification') || !process.env.BENCH_ONLY) await (await import('./amplification.ts')).amplificationPart();
  } catch (e) {
    console.error(`bench failed: ${(e as Error).stack ?? e}`);
    process.exitCode = 1;
  } finally {
    client.close();
    await cleanupAll();
    console.log(`\nbench run time: ${f((performance.now() - t0) / 1000)} s (load average now ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})`);
  }
}

await main();

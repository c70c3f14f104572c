// bench/lib: what every bench part shares — the processes it starts (and always stops, on failure and Ctrl-C
// too), free loopback ports, dnsperf runs with per-query latencies, /metrics scraping, RSS, a small DNS client
// on one socket, and percentile/format helpers. Self-contained: it imports nothing from src/ or test/helpers.

import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { closeSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as dnsPacket from 'dns-packet';
import type { ServiceSnapshot } from '../src/model/service.ts';
import type { Store } from '../src/store/store.ts';

// ---- processes ----

interface Started {
  readonly child: ChildProcess;
  readonly name: string;
  /** Started in its own process group (killed as a group: NSD forks its server processes). */
  readonly group: boolean;
}

const started = new Set<Started>();
const tmpDirs = new Set<string>();

/** Remove this directory when the bench ends, however it ends. */
export function cleanupDir(dir: string): void {
  tmpDirs.add(dir);
}

function signal(s: Started, sig: NodeJS.Signals): void {
  if (s.child.exitCode !== null || s.child.signalCode !== null || s.child.pid === undefined) return;
  try {
    if (s.group) process.kill(-s.child.pid, sig);
    else s.child.kill(sig);
  } catch {
    // already gone
  }
}

/** Synchronous last resort (process 'exit'): SIGKILL whatever still runs, remove the temporary directories. */
function killAllNow(): void {
  for (const s of started) signal(s, 'SIGKILL');
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
}

/** Stop every started process (SIGTERM, SIGKILL after 5 s) and remove the temporary directories. */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...started].map((s) => stopChild(s.child)));
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
  tmpDirs.clear();
}

let handlersInstalled = false;
/** On Ctrl-C / SIGTERM: stop children, clean up, exit 130/143. On any exit: SIGKILL leftovers. */
export function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAllNow);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping ${started.size} process(es)\n`);
      void cleanupAll().finally(() => process.exit(code));
    });
  }
}

export interface StartOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly group?: boolean;
  readonly cwd?: string;
  /** Run on the server's CPU (see `pinned`). */
  readonly pin?: Role;
}

/** Who a pinned process is: the DNS server measured, or the load generator (dnsperf). */
export type Role = 'server' | 'client';

/**
 * CPU pinning of the realistic load, off unless BENCH_PIN=1: the server measured (svcdns, NSD) on the last CPU,
 * dnsperf on the first, everything else (the fakes, the bench) wherever the kernel puts it. Unpinned, the
 * scheduler moves the processes between cores from one 8 s phase to the next (NSD moved by ±30 % on a 2-core VM).
 * Pinned, NSD held within ±10 %, but svcdns's change phases did not steady: the fakes, unpinned, then take CPU
 * from one of the two pinned processes. So it stays a way to measure one core's capacity, not the default.
 * Needs `taskset` (util-linux) and 2 CPUs.
 */
export const PIN = process.env.BENCH_PIN === '1' && os.availableParallelism() >= 2 && spawnSync('taskset', ['-V']).status === 0;

/** `cmd args` under taskset for `role`, or unchanged when not pinning. taskset execs: the pid stays the command's. */
export function pinned(role: Role | undefined, cmd: string, args: string[]): [string, string[]] {
  if (!PIN || role === undefined) return [cmd, args];
  const cpu = role === 'server' ? os.availableParallelism() - 1 : 0;
  return ['taskset', ['-c', String(cpu), cmd, ...args]];
}

/**
 * The Consul fake (test/fakes/consul-fake.ts) in a child process of its own, so its CPU and heap are not the
 * measured process's. `call` sends one IPC request ({op: 'seed' | 'setCheck' | ...}) and resolves with its result;
 * `ready` resolves with the fake's HTTP port.
 */
export function forkConsulFake(): { child: ChildProcess; ready: Promise<{ port: number }>; call: <T>(msg: Record<string, unknown>) => Promise<T> } {
  const child = fork(fileURLToPath(new URL('../test/fakes/consul-fake.ts', import.meta.url)), [], {
    execArgv: ['--disable-warning=ExperimentalWarning'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let nextId = 1;
  const pending = new Map<number, (r: unknown) => void>();
  const ready = new Promise<{ port: number }>((resolve) => pending.set(0, resolve as (r: unknown) => void));
  child.on('message', (m: { id: number; result: unknown }) => {
    pending.get(m.id)?.(m.result);
    pending.delete(m.id);
  });
  const call = <T>(msg: Record<string, unknown>): Promise<T> =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve as (r: unknown) => void);
      child.send({ id, ...msg });
    });
  return { child, ready, call };
}

/** Spawn a child whose stdout/stderr are drained (a full pipe would block it); the tail is kept for errors. */
export function start(cmd: string, args: string[], name: string, opts: StartOptions = {}): ChildProcess {
  const [file, argv] = pinned(opts.pin, cmd, args);
  const child = spawn(file, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.group === true,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  const s: Started = { child, name, group: opts.group === true };
  started.add(s);
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('exit', (code, sig) => {
    started.delete(s);
    if (code !== null && code !== 0) process.stderr.write(`bench: ${name} exited ${code}: ${tail.slice(-1500)}\n`);
    else if (sig !== null && sig !== 'SIGTERM' && sig !== 'SIGKILL') process.stderr.write(`bench: ${name} killed by ${sig}\n`);
  });
  child.on('error', (e) => process.stderr.write(`bench: ${name}: ${e.message}\n`));
  (child as ChildProcess & { tail: () => string }).tail = () => tail;
  return child;
}

export function tailOf(c: ChildProcess): string {
  return (c as ChildProcess & { tail?: () => string }).tail?.() ?? '';
}

export function stopChild(c: ChildProcess | undefined, graceMs = 5000): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  const s = [...started].find((x) => x.child === c);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      if (s) signal(s, 'SIGKILL');
      else c.kill('SIGKILL');
    }, graceMs);
    c.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    if (s) signal(s, 'SIGTERM');
    else c.kill('SIGTERM');
  });
}

export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** A port free for both UDP and TCP on 127.0.0.1 (DNS listens on both; the admin server on TCP). */
export async function freePort(): Promise<number> {
  for (;;) {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const port = s.address().port;
    const tcpFree = await new Promise<boolean>((resolve) => {
      const t = net.createServer();
      t.once('error', () => resolve(false));
      t.listen(port, '127.0.0.1', () => t.close(() => resolve(true)));
    });
    s.close();
    if (tcpFree) return port;
  }
}

// ---- DNS client: one socket, many outstanding queries matched by ID ----

export interface Reply {
  readonly rcode: string;
  readonly tc: boolean;
  /** Answer rdata as text (A/AAAA addresses, SRV "port target"), sorted. */
  readonly data: string[];
  readonly raw: Buffer;
  readonly ms: number;
}

export class DnsClient {
  readonly #sock = dgram.createSocket('udp4');
  readonly #pending = new Map<number, (m: Buffer) => void>();
  #id = 1;
  #bound: Promise<void>;

  constructor() {
    this.#bound = new Promise((r) => this.#sock.bind(0, '127.0.0.1', () => r()));
    this.#sock.on('message', (m) => {
      if (m.length < 12) return;
      const cb = this.#pending.get(m.readUInt16BE(0));
      if (cb) cb(m);
    });
  }

  /** One query; resolves null after `timeoutMs` without a reply. `edns`: OPT with this UDP size. */
  async ask(port: number, name: string, type: string, timeoutMs = 2000, edns = 1232): Promise<Reply | null> {
    await this.#bound;
    const id = (this.#id = (this.#id % 65535) + 1);
    const q = dnsPacket.encode({
      type: 'query',
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: edns, flags: 0, options: [] } as unknown as dnsPacket.Answer],
    });
    const t0 = performance.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(null);
      }, timeoutMs);
      this.#pending.set(id, (m) => {
        this.#pending.delete(id);
        clearTimeout(timer);
        resolve(parseReply(m, performance.now() - t0));
      });
      this.#sock.send(q, port, '127.0.0.1');
    });
  }

  close(): void {
    this.#sock.close();
  }
}

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

function parseReply(m: Buffer, ms: number): Reply {
  const rcode = RCODES[m[3]! & 0x0f] ?? String(m[3]! & 0x0f);
  const tc = (m[2]! & 0x02) !== 0;
  let data: string[] = [];
  try {
    const p = dnsPacket.decode(m);
    data = (p.answers ?? [])
      .map((a) => {
        if (a.type === 'A' || a.type === 'AAAA') return String(a.data);
        if (a.type === 'SRV') return `${a.data.port} ${a.data.target}`;
        return a.type;
      })
      .sort();
  } catch {
    data = ['<undecodable>'];
  }
  return { rcode, tc, data, raw: m, ms };
}

/** Ask until `ok(reply)` holds; throws after `deadlineMs` (a hang bound, never a measurement). */
export async function waitReply(client: DnsClient, port: number, name: string, type: string, ok: (r: Reply) => boolean, deadlineMs = 60_000): Promise<Reply> {
  const end = Date.now() + deadlineMs;
  let last: Reply | null = null;
  while (Date.now() < end) {
    last = await client.ask(port, name, type, 1000);
    if (last && ok(last)) return last;
    await sleep(20);
  }
  throw new Error(`no expected answer for ${name} ${type} on port ${port} within ${deadlineMs} ms (last: ${last ? `${last.rcode} ${last.data.join(',')}` : 'no reply'})`);
}

// ---- dnsperf ----

export interface PerfRun {
  readonly qps: number;
  readonly sent: number;
  readonly completed: number;
  readonly lostPct: number;
  readonly avgMs: number;
  /** From -v per-query lines (NaN without -v). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly rcodes: Record<string, number>;
}

/**
 * dnsperf with its output going to a file (with -v it prints a line per query; a pipe that is not drained fast
 * enough stalls its receiving thread, which then reports our latency inflated by its own wait). Asynchronous, so
 * the fakes and the change driver in this process keep running while it measures.
 */
export async function dnsperf(port: number, queryFile: string, outFile: string, args: string[], verbose: boolean, pin?: Role): Promise<PerfRun> {
  const fd = openSync(outFile, 'w');
  let stderr = '';
  const code = await new Promise<number | null>((resolve) => {
    const [file, argv] = pinned(pin, 'dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queryFile, ...args, ...(verbose ? ['-v'] : [])]);
    const c = spawn(file, argv, {
      stdio: ['ignore', fd, 'pipe'],
    });
    const s: Started = { child: c, name: 'dnsperf', group: false };
    started.add(s);
    c.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    c.on('exit', (code) => {
      started.delete(s);
      resolve(code);
    });
    c.on('error', (e) => {
      stderr += e.message;
      started.delete(s);
      resolve(-1);
    });
  });
  closeSync(fd);
  if (code !== 0) throw new Error(`dnsperf failed (${code}): ${stderr}`);
  return parsePerf(readFileSync(outFile, 'utf8'));
}

function parsePerf(out: string): PerfRun {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const lat: number[] = [];
  const rcodes: Record<string, number> = {};
  const codes = /Response codes:\s*(.*)$/m.exec(out)?.[1] ?? '';
  for (const m of codes.matchAll(/([A-Z]+) (\d+) \(/g)) rcodes[m[1]!] = Number(m[2]);
  let i = 0;
  while ((i = out.indexOf('\n> ', i)) >= 0) {
    const end = out.indexOf('\n', i + 1);
    const line = out.slice(i + 3, end < 0 ? undefined : end);
    i = end < 0 ? out.length : end;
    if (line.startsWith('T ')) continue; // timed out
    const sp = line.lastIndexOf(' ');
    const v = Number(line.slice(sp + 1));
    if (Number.isFinite(v)) lat.push(v * 1000);
  }
  const sorted = Float64Array.from(lat).sort();
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lostPct: num(/Queries lost:\s+\d+ \(([\d.]+)%\)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    p50Ms: pct(sorted, 0.5),
    p99Ms: pct(sorted, 0.99),
    rcodes,
  };
}

// ---- metrics, memory ----

/** Scrape svcdns's /metrics into name{labels} → value. */
export async function scrape(adminPort: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`);
  const text = await res.text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** Sum of every series of `name` (any labels). */
export function metric(m: Map<string, number>, name: string): number {
  let sum = 0;
  let found = false;
  for (const [k, v] of m) {
    if (k === name || k.startsWith(`${name}{`)) {
      sum += v;
      found = true;
    }
  }
  return found ? sum : NaN;
}

/**
 * `svcdns_propagation_seconds{backend}` between two scrapes (issue 14 #4: backend event received → first answer
 * served from it): count, mean and the p50/p99 bucket bounds, as one line for the report.
 */
export function propagationMetric(before: Map<string, number>, after: Map<string, number>, backend: string): string {
  const name = 'svcdns_propagation_seconds';
  const label = `backend="${backend}"`;
  const pick = (m: Map<string, number>, suffix: string) => {
    for (const [k, v] of m) if (k.startsWith(`${name}${suffix}{`) && k.includes(label)) return v;
    return 0;
  };
  const n = pick(after, '_count') - pick(before, '_count');
  if (n <= 0) return `svcdns_propagation_seconds{${label}}: no observation`;
  const mean = (pick(after, '_sum') - pick(before, '_sum')) / n;
  const buckets: [number, number][] = [];
  for (const [k, v] of after) {
    if (!k.startsWith(`${name}_bucket{`) || !k.includes(label)) continue;
    const le = /le="([^"]+)"/.exec(k)?.[1];
    if (le !== undefined) buckets.push([le === '+Inf' ? Infinity : Number(le), v - (before.get(k) ?? 0)]);
  }
  buckets.sort((x, y) => x[0] - y[0]);
  const q = (p: number) => buckets.find(([, c]) => c >= p * n)?.[0] ?? Infinity;
  const ms = (s: number) => (s === Infinity ? '+Inf' : `${+(s * 1000).toPrecision(3)} ms`);
  return `svcdns_propagation_seconds{${label}} (event received → first answer, the server's own histogram): n=${n}, mean ${ms(mean)}, p50 <= ${ms(q(0.5))}, p99 <= ${ms(q(0.99))}`;
}

export function rssMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

/**
 * Where a svcdns process's memory is (issue 11 item 4), from its own metrics and /proc: RSS; the V8 heap used and
 * reserved (total), of which the young generation; Buffer/external memory; the bytes its answer caches account
 * for; and RSS outside the V8 heap (code, the Node runtime, malloc). MB.
 */
export interface MemoryBreakdown { rss: number; rssFile: number; heapUsed: number; heapTotal: number; newSpace: number; external: number; cache: number }

/** RssFile of `pid` (MB): file-backed resident pages, mostly the node binary's code and data (shared, clean). */
function rssFileMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    return Number(/RssFile:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}
export async function memoryBreakdown(adminPort: number, pid: number | undefined): Promise<MemoryBreakdown> {
  const m = await scrape(adminPort);
  const mb = (n: number) => n / 1048576;
  return {
    rss: rssMb(pid),
    rssFile: rssFileMb(pid),
    heapUsed: mb(metric(m, 'svcdns_nodejs_heap_size_used_bytes')),
    heapTotal: mb(metric(m, 'svcdns_nodejs_heap_size_total_bytes')),
    newSpace: mb(m.get('svcdns_nodejs_heap_space_size_total_bytes{space="new"}') ?? m.get('svcdns_nodejs_heap_space_size_total_bytes{space="new_space"}') ?? NaN),
    external: mb(metric(m, 'svcdns_nodejs_external_memory_bytes')),
    cache: mb(metric(m, 'svcdns_dns_cache_bytes')),
  };
}
export function memoryLine(b: MemoryBreakdown): string {
  return `RSS ${f(b.rss)} = V8 heap ${f(b.heapTotal)} reserved (${f(b.heapUsed)} used; young generation ${f(b.newSpace)}) + ${f(b.rss - b.heapTotal)} outside the heap (of which ${f(b.rssFile)} file-backed: the node binary's pages; external/Buffers ${f(b.external)}; the rest malloc); answer cache accounts for ${f(b.cache)}`;
}

/** Clock ticks per second of /proc/<pid>/stat times (getconf CLK_TCK; 100 on Linux). */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU and process group from a /proc stat file (a process's, or one of its tasks'), or null. */
function cpuOf(pid: number, task?: number): { cpu: number; pgrp: number } | null {
  try {
    const stat = readFileSync(task === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${task}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
    return { cpu: (Number(fields[11]) + Number(fields[12])) / CLK_TCK, pgrp: Number(fields[2]) };
  } catch {
    return null;
  }
}

/**
 * CPU seconds (user + system) used so far by the main thread of `pid` alone (its task whose id is the pid), or NaN.
 * Beside cpuSeconds(): what is left is the process's other threads (V8's GC helpers, libuv's pool).
 */
export function mainThreadCpuSeconds(pid: number | undefined): number {
  return pid === undefined ? NaN : cpuOf(pid, pid)?.cpu ?? NaN;
}

/**
 * CPU seconds (user + system) used so far by each thread of `pid`, summed by thread name (`MainThread`,
 * `V8Worker`, `libuv-worker`, ...): where a process's CPU went, read twice and subtracted.
 */
export function cpuSecondsByThread(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out; // the process is gone
  }
  for (const t of tasks) {
    const c = cpuOf(pid, Number(t));
    if (c === null) continue; // the thread ended meanwhile
    let name = t;
    try {
      name = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
    } catch {
      // keep the thread id
    }
    out.set(name, (out.get(name) ?? 0) + c.cpu);
  }
  return out;
}

/**
 * CPU seconds (user + system, all threads) used so far by `pid`, or with `group` by every process in its process
 * group (NSD does its work in forked children). Lets a figure be read per CPU second of the server, which holds
 * better than qps when other work on the machine takes cores away.
 */
export function cpuSeconds(pid: number | undefined, group = false): number {
  if (pid === undefined) return NaN;
  if (!group) return cpuOf(pid)?.cpu ?? NaN;
  let sum = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const c = cpuOf(Number(d));
    if (c && c.pgrp === pid) sum += c.cpu;
  }
  return sum;
}

/**
 * The machine's CPU time so far, from /proc/stat's `cpu` line (jiffies): all of it, and what the hypervisor took
 * for other guests (steal). On a shared VM the steal of a phase says how much of the drift between phases was the
 * host's; NaN where /proc/stat has no steal column.
 */
export function hostCpu(): { total: number; steal: number; idle: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    return { total: v.reduce((a, x) => a + x, 0), steal: v[7] ?? NaN, idle: (v[3] ?? NaN) + (v[4] ?? NaN) };
  } catch {
    return { total: NaN, steal: NaN, idle: NaN };
  }
}

/** Steal as a percentage of all CPU time between two `hostCpu()` readings. */
export function stealPct(a: { total: number; steal: number }, b: { total: number; steal: number }): number {
  return (100 * (b.steal - a.steal)) / (b.total - a.total);
}

// ---- numbers ----

export function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export function percentiles(samples: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = Float64Array.from(samples).sort();
  return { n: s.length, p50: pct(s, 0.5), p99: pct(s, 0.99), max: s.length ? s[s.length - 1]! : NaN };
}

export const f = (n: number, d = 0): string => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Deterministic PRNG (mulberry32): the same query file and change sequence in every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A markdown table. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/**
 * `snap` as the first snapshot of backend `name` in `store` (made by the caller as the server makes it, app.ts).
 * A big one is folded over several turns (issue 11 item 2): the whole fold until synced, the synchronous apply
 * call, and the longest event-loop delay meanwhile (what a DNS query could see), in ms.
 */
export async function timeFirstFold(store: Store, name: string, snap: ServiceSnapshot): Promise<{ allMs: number; callMs: number; longestMs: number }> {
  store.register(name, name, () => true);
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  const t0 = performance.now();
  store.apply(name, snap);
  const callMs = performance.now() - t0;
  while (store.status()[0]!.state !== 'synced') await sleep(1);
  const allMs = performance.now() - t0;
  await sleep(20); // the histogram records a blocked turn only at its next timer
  eld.disable();
  return { allMs, callMs, longestMs: Math.max(callMs, eld.max / 1e6) };
}

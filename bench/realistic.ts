// bench/realistic: the load users actually have (issue 11) — 10,000 services × 10 endpoints served from the
// project's own Kubernetes API fake (EndpointSlices, list+watch) and Consul fake, Zipf-like queries (s = 1) over
// every service (70 % A, 20 % SRV, 10 % AAAA = NODATA) from dnsperf -c 1, while endpoint readiness flips are
// applied THROUGH THE FAKE'S API (never into the store) at 0, 10 and 50 changes/s. Also the propagation of one
// change (watch event / health change → changed DNS answer) at that size, and NSD serving the same names from a
// generated zone as the C reference. Every figure is reported, none is asserted.

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConsulFake } from '../test/fakes/consul-fake.ts';
import { KubeApiServerFake, endpointSlice, type KubeObject } from '../test/fakes/kube-apiserver-fake.ts';
import {
  cpuSeconds, cpuSecondsByThread, mainThreadCpuSeconds, DnsClient, dnsperf, f, freePort, have, hostCpu, stealPct, memoryBreakdown, memoryLine, metric, percentiles, propagationMetric, rng, rssMb, scrape, sleep, start, stopChild, table,
  tailOf, waitReply, type PerfRun, type Reply,
} from './lib.ts';
// The Node flags every shipped launcher passes (package.json start, bin shebang, Dockerfile, systemd unit).
import { SERVER_ENV, SERVER_NODE_FLAGS } from '../src/require-node.ts';

export interface RealisticConfig {
  readonly tmp: string;
  /** The built cli.js (in the temporary build directory). */
  readonly cli: string;
  readonly services: number;
  readonly perService: number;
  readonly phaseSeconds: number;
  /** Upper bound of the warm-up, which is one pass over the whole query file (dnsperf -n 1). */
  readonly warmSeconds: number;
  readonly rates: readonly number[];
  /**
   * Rounds over `rates` (each round: every rate once, NSD after its 0/s phase). This VM's speed drifts by up to
   * ±30 % between adjacent 8 s phases, so each rate's row is the median of the rounds, interleaved so that the
   * drift hits every rate alike (as the one-name part does).
   */
  readonly rounds: number;
  /** dnsperf -q: queries outstanding. */
  readonly outstanding: number;
  /** The alternating phase (see `Alternating`): its length and the length of each window (s); 0 skips it. */
  readonly altSeconds: number;
  readonly altWindowSeconds: number;
  readonly propagationSamples: number;
}

/** One row of the realistic table. */
export interface Row {
  readonly server: string;
  readonly rate: number;
  readonly perf: PerfRun;
  readonly hitPct: number;
  readonly asked: number;
  readonly issued: number;
  readonly generations: number;
  readonly converged: string;
  readonly rssMb: number;
  /** CPU seconds the server used during the phase (all threads; NSD: all its processes). */
  readonly cpuS: number;
  /** svcdns's longest event-loop lag over the phase (ms; its /metrics, reset by the scrape before the phase). */
  readonly lagMaxMs: number;
  /** CPU seconds of the bench process itself over the phase: the in-process fakes and the change driver. */
  readonly benchCpuS: number;
  /** Seconds the phase lasted (dnsperf's run). */
  readonly wallS: number;
  /** Seconds svcdns spent in garbage collection during the phase (its own metric; NaN for NSD). */
  readonly gcS?: number;
  /**
   * Full (mark-compact) collections of the server during the phase: ~1 in 8 s normally; dozens mean the process
   * is in a GC storm (see src/require-node.ts, --no-allocation-site-pretenuring; bench/gc-storm.ts).
   */
  readonly fullGcs?: number;
  /** What the hypervisor took from this machine during the phase: steal, % of all its CPU time. */
  readonly stealPct: number;
  /** A median row: the qps of every round, in order. */
  readonly roundsQps?: readonly number[];
}

/** The row with the median qps of the rounds (the lower middle for an even count), carrying every round's qps. */
export function medianRow(rows: readonly Row[]): Row {
  const sorted = [...rows].sort((a, b) => a.perf.qps - b.perf.qps);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, roundsQps: rows.map((r) => r.perf.qps) };
}

export interface BackendResult {
  readonly name: string;
  readonly rows: Row[];
  readonly syncMs: number;
  readonly rssAfterSyncMb: number;
  readonly rssAfterLoadMb: number;
  readonly notes: string[];
  /** The alternating phase of a registry backend (none for the file backend, or with altSeconds 0). */
  readonly alternating?: Alternating;
}

const DOMAIN = 'sd.internal';
const ZONE_NS = 'default';

/** Address of endpoint j of service k: 10.(k>>8).(k&255).(j+1), unique for k < 65,536 and j < 254. */
export function addr(k: number, j: number): string {
  return `10.${(k >> 8) & 255}.${k & 255}.${j + 1}`;
}

// ---- the query file: Zipf (s = 1) over every service, 70 % A, 20 % SRV, 10 % AAAA ----

export function writeQueryFile(path: string, services: number, lines = 100_000, seed = 11): { a: number; srv: number; aaaa: number; distinct: number } {
  const cdf = new Float64Array(services);
  let sum = 0;
  for (let r = 0; r < services; r++) cdf[r] = sum += 1 / (r + 1);
  for (let r = 0; r < services; r++) cdf[r]! /= sum;
  const rand = rng(seed);
  // Rank → service: a fixed shuffle, so the popular services are spread over the name space (not svc-0..svc-9).
  const perm = Array.from({ length: services }, (_, i) => i);
  for (let i = services - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const out: string[] = [];
  const seen = new Set<string>();
  let a = 0, srv = 0, aaaa = 0;
  for (let i = 0; i < lines; i++) {
    const u = rand();
    let lo = 0, hi = services - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1; else hi = mid;
    }
    const k = perm[lo]!;
    const t = rand();
    let line: string;
    if (t < 0.7) { line = `svc-${k}.service.${DOMAIN} A`; a++; }
    else if (t < 0.9) { line = `_http._tcp.svc-${k}.service.${DOMAIN} SRV`; srv++; }
    else { line = `svc-${k}.service.${DOMAIN} AAAA`; aaaa++; }
    seen.add(line);
    out.push(line);
  }
  writeFileSync(path, out.join('\n') + '\n');
  return { a, srv, aaaa, distinct: seen.size };
}

/**
 * The warm-up: one pass over the whole query file. dnsperf starts every run at the file's first line and loops it,
 * so after this pass every phase meets a cache that has seen each name once, the 0 changes/s phase included
 * (a shorter warm-up would leave the first phase, and only it, paying first-time misses).
 */
export function warmArgs(cfg: RealisticConfig): string[] {
  return ['-c', '1', '-e', '-q', String(cfg.outstanding), '-n', '1', '-l', String(cfg.warmSeconds)];
}

// ---- the registries, driven through their fakes' APIs ----

interface Registry {
  readonly name: string;
  /** The `backends:` entry (YAML, indented two spaces) for this registry. */
  backendYaml(dir: string): string;
  /** Apply endpoint j of service k's readiness through the fake's API; returns performance.now() at the write. */
  setReady(k: number, j: number, ready: boolean): number;
  /** A change that is not a health change (Consul: the port), or null when not measured for this registry. */
  setPort?(k: number, port: number): void;
  /**
   * Consul: node `s` (of 3 kept for this, each with one service answering the node's address) re-registered with a
   * new address; returns the service to ask and the address its A answer must show.
   */
  moveNode?(s: number): { service: string; address: string };
  stop(): Promise<void>;
}

/** Readiness of every endpoint, as the bench has applied it through the fake (the truth answers must converge to). */
class Readiness {
  readonly #ready: Uint8Array;
  readonly services: number;
  readonly per: number;
  constructor(services: number, per: number) {
    this.services = services;
    this.per = per;
    this.#ready = new Uint8Array(services * per).fill(1);
  }
  get(k: number, j: number): boolean {
    return this.#ready[k * this.per + j] === 1;
  }
  set(k: number, j: number, v: boolean): void {
    this.#ready[k * this.per + j] = v ? 1 : 0;
  }
  expectedA(k: number): string[] {
    const out: string[] = [];
    for (let j = 0; j < this.per; j++) if (this.get(k, j)) out.push(addr(k, j));
    return out.sort();
  }
}

async function kubeRegistry(state: Readiness): Promise<Registry> {
  const fake = await KubeApiServerFake.start();
  const slice = (k: number): KubeObject =>
    endpointSlice({
      namespace: ZONE_NS,
      name: `svc-${k}-b7x2q`,
      service: `svc-${k}`,
      ports: [{ name: 'http', port: 8080 }],
      endpoints: Array.from({ length: state.per }, (_, j) => ({ addresses: [addr(k, j)], ready: state.get(k, j), pod: `svc-${k}-${j}` })),
    });
  for (let k = 0; k < state.services; k++) fake.apply(slice(k));
  return {
    name: 'kubernetes',
    backendYaml(dir) {
      const kc = join(dir, 'kubeconfig');
      writeFileSync(kc, fake.kubeconfig());
      return `  - type: kubernetes\n    kubeconfig: ${JSON.stringify(kc)}\n    defaultScope: ${ZONE_NS}\n`;
    },
    setReady(k, j, ready) {
      state.set(k, j, ready);
      return fake.apply(slice(k)).writtenAt;
    },
    stop: () => fake.stop(),
  };
}

async function consulRegistry(state: Readiness): Promise<Registry> {
  const fake = await ConsulFake.start();
  fake.recordRequests = false; // 10k watches would grow the request log without bound
  const NODES = 1000;
  for (let n = 0; n < NODES; n++) fake.addNode({ name: `node-${n}`, address: `10.250.${n >> 8}.${n & 255}` });
  const spec = (k: number, j: number, port = 8080) => ({
    id: `svc-${k}-${j}`,
    service: `svc-${k}`,
    node: `node-${(k * state.per + j) % NODES}`,
    address: addr(k, j),
    port,
    tags: ['http'], // `_http._tcp.svc-K.service.D`: P is a tag for Consul (§2.3b)
  });
  for (let k = 0; k < state.services; k++) for (let j = 0; j < state.per; j++) fake.register(spec(k, j));
  // Three services without a Service.Address, one node each: they answer their node's address (moveNode).
  for (let s = 0; s < 3; s++) {
    fake.addNode({ name: `xnode-${s}`, address: `10.251.0.${s + 1}` });
    fake.register({ id: `nodesvc-${s}-1`, service: `nodesvc-${s}`, node: `xnode-${s}`, port: 8080 });
  }
  let moves = 0;
  return {
    name: 'consul',
    backendYaml: () => `  - type: consul\n    address: ${JSON.stringify(fake.address)}\n`,
    setReady(k, j, ready) {
      state.set(k, j, ready);
      const t = performance.now();
      fake.setCheck(`svc-${k}-${j}`, ready ? 'passing' : 'critical');
      return t;
    },
    setPort(k, port) {
      for (let j = 0; j < state.per; j++) {
        fake.register({ ...spec(k, j, port), checks: [{ status: state.get(k, j) ? 'passing' : 'critical' }] });
      }
    },
    moveNode(s) {
      const address = `10.252.${++moves & 255}.${s + 1}`;
      fake.setNodeAddress(`xnode-${s}`, address);
      return { service: `nodesvc-${s}`, address };
    },
    stop: () => fake.close(),
  };
}

// ---- the change driver: flips at a steady rate while dnsperf runs ----

class ChangeDriver {
  readonly touched = new Set<number>();
  issued = 0;
  #timer: NodeJS.Timeout | null = null;
  #t0 = 0;
  #elapsed = 0;
  readonly reg: Registry;
  readonly state: Readiness;
  readonly rate: number;
  readonly rand: () => number;
  constructor(reg: Registry, state: Readiness, rate: number, rand: () => number) {
    this.reg = reg;
    this.state = state;
    this.rate = rate;
    this.rand = rand;
  }

  start(): void {
    this.#t0 = performance.now();
    if (this.rate <= 0) return;
    // Every 10 ms, catch up to rate × elapsed: a late timer sends a small burst, the average rate holds.
    this.#timer = setInterval(() => {
      const due = Math.floor(((performance.now() - this.#t0) / 1000) * this.rate);
      while (this.issued < due) this.#flip();
    }, 10);
  }

  #flip(): void {
    const k = Math.floor(this.rand() * this.state.services);
    const j = Math.floor(this.rand() * this.state.per);
    this.reg.setReady(k, j, !this.state.get(k, j));
    this.touched.add(k);
    this.issued++;
  }

  stop(): { asked: number; issued: number } {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#elapsed = (performance.now() - this.#t0) / 1000;
    return { asked: Math.round(this.rate * this.#elapsed), issued: this.issued };
  }
}

// ---- the alternating phase: 0 ↔ rate changes/s inside one dnsperf run ----

/**
 * One dnsperf run (`-S 1` prints the qps of every second) while the change rate switches between 0 and `rate`
 * every `windowS` seconds. Separate 8 s phases of one rate differ by up to ±30 % on a shared VM, more than the
 * effect measured; windows of a few seconds inside one run let that drift fall on both rates alike. A one-second
 * interval counts for a window when it lies wholly inside it and starts at least `skipS` after the switch: the
 * work of the changes made just before a switch (Consul re-reads a service up to ~0.5 s after its change) then
 * counts for the 50/s window that caused it, not for the 0/s window after it.
 */
export interface Alternating {
  readonly rate: number;
  readonly windowS: number;
  readonly skipS: number;
  readonly seconds: number;
  /** Each kept interval of the 0/s windows, and of the `rate` windows, in time order: its end (s) and qps. */
  readonly off: readonly Interval[];
  readonly on: readonly Interval[];
  /** Server CPU seconds and wall seconds summed over the windows of each rate (whole windows). */
  readonly cpuOffS: number;
  readonly cpuOnS: number;
  /** The same CPU seconds of the server's main thread alone (the DNS thread with `workers: none`). */
  readonly mainOffS: number;
  readonly mainOnS: number;
  readonly wallOffS: number;
  readonly wallOnS: number;
  /** Host steal over the windows of each rate, % of all CPU time (see `hostCpu`). */
  readonly stealOffPct: number;
  readonly stealOnPct: number;
  /** Host idle (idle + iowait) over the windows of each rate, % of all CPU time: how much CPU nobody wanted. */
  readonly idleOffPct: number;
  readonly idleOnPct: number;
  /** CPU seconds of the bench process itself, where the registry fakes and the change driver run. */
  readonly benchOffS: number;
  readonly benchOnS: number;
  readonly asked: number;
  readonly issued: number;
  readonly converged: string;
  /** The dnsperf run as a whole: its lost queries are reported beside the ratio. */
  readonly perf: PerfRun;
}

/** The end (epoch seconds) of one `-S` interval and the qps dnsperf measured over it. */
export interface Interval {
  readonly t: number;
  readonly qps: number;
}

/** Each `-S` line of a dnsperf output, `1796158774.488818: 60769.087854`, in order. */
export function parseIntervals(out: string): Interval[] {
  const points: Interval[] = [];
  for (const m of out.matchAll(/^(\d+\.\d+): ([\d.]+)$/gm)) points.push({ t: Number(m[1]), qps: Number(m[2]) });
  return points;
}

/**
 * Sorts each interval (from one `-S` point to the next) into the window that holds it whole, from skipS after
 * the window's start; an interval across a switch, or in a window's first skipS, counts for neither rate.
 */
export function classifyIntervals(points: readonly Interval[], windows: readonly { start: number; end: number; on: boolean }[], skipS: number): { off: Interval[]; on: Interval[] } {
  const off: Interval[] = [];
  const on: Interval[] = [];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1]!.t;
    const b = points[i]!.t;
    const w = windows.find((w) => a >= w.start + skipS && b <= w.end);
    if (w) (w.on ? on : off).push(points[i]!);
  }
  return { off, on };
}

async function alternatingPhase(cfg: RealisticConfig, kind: string, port: number, pid: number | undefined, qfile: string, reg: Registry, state: Readiness, rand: () => number, client: DnsClient): Promise<Alternating> {
  const rate = Math.max(...cfg.rates);
  const windowS = cfg.altWindowSeconds;
  const skipS = 1;
  const windows: { start: number; end: number; on: boolean; wallS: number; cpuS: number; mainS: number; benchS: number; hostTotal: number; hostSteal: number; hostIdle: number }[] = [];
  /** The clocks a window is measured by: wall, the server's CPU (all threads, main thread), the bench process's, the host's. */
  const sample = () => {
    const u = process.cpuUsage();
    return { t: Date.now() / 1000, cpu: cpuSeconds(pid), main: mainThreadCpuSeconds(pid), bench: (u.user + u.system) / 1e6, host: hostCpu() };
  };
  const touched = new Set<number>();
  let asked = 0;
  let issued = 0;
  let on = false;
  let driver: ChangeDriver | null = null;
  let last = sample();
  /** Ends the current window; `next` starts the other rate's window. */
  const close = (next: boolean) => {
    const now = sample();
    if (driver) {
      const d = driver.stop();
      asked += d.asked;
      issued += d.issued;
      for (const k of driver.touched) touched.add(k);
      driver = null;
    }
    windows.push({
      start: last.t, end: now.t, on, wallS: now.t - last.t, cpuS: now.cpu - last.cpu, mainS: now.main - last.main, benchS: now.bench - last.bench,
      hostTotal: now.host.total - last.host.total, hostSteal: now.host.steal - last.host.steal, hostIdle: now.host.idle - last.host.idle,
    });
    last = now;
    if (!next) return;
    on = !on;
    if (on) {
      driver = new ChangeDriver(reg, state, rate, rand);
      driver.start();
    }
  };
  const timer = setInterval(() => close(true), windowS * 1000);
  const out = join(cfg.tmp, `dnsperf-${kind}-alternating.out`);
  let perf: PerfRun;
  try {
    perf = await dnsperf(port, qfile, out, ['-c', '1', '-e', '-q', String(cfg.outstanding), '-l', String(cfg.altSeconds), '-S', '1'], false, 'client');
  } finally {
    clearInterval(timer);
    close(false);
  }
  const { off, on: onQps } = classifyIntervals(parseIntervals(readFileSync(out, 'utf8')), windows, skipS);
  const sum = (on: boolean, k: 'wallS' | 'cpuS' | 'mainS' | 'benchS' | 'hostTotal' | 'hostSteal' | 'hostIdle') => windows.filter((w) => w.on === on).reduce((a, w) => a + w[k], 0);
  return {
    rate, windowS, skipS, seconds: cfg.altSeconds, off, on: onQps,
    cpuOffS: sum(false, 'cpuS'), cpuOnS: sum(true, 'cpuS'), mainOffS: sum(false, 'mainS'), mainOnS: sum(true, 'mainS'), wallOffS: sum(false, 'wallS'), wallOnS: sum(true, 'wallS'),
    stealOffPct: (100 * sum(false, 'hostSteal')) / sum(false, 'hostTotal'), stealOnPct: (100 * sum(true, 'hostSteal')) / sum(true, 'hostTotal'),
    idleOffPct: (100 * sum(false, 'hostIdle')) / sum(false, 'hostTotal'), idleOnPct: (100 * sum(true, 'hostIdle')) / sum(true, 'hostTotal'),
    benchOffS: sum(false, 'benchS'), benchOnS: sum(true, 'benchS'),
    asked, issued, converged: await converge(client, port, state, touched), perf,
  };
}

const mean = (xs: readonly Interval[]) => (xs.length === 0 ? NaN : xs.reduce((a, x) => a + x.qps, 0) / xs.length);
const median = (xs: readonly Interval[]) => percentiles(xs.map((x) => x.qps)).p50;

/** `rate` qps ÷ 0/s qps: the means of the kept intervals, of all of them or of those ending in [from, to). */
export function alternatingRatio(a: Pick<Alternating, 'on' | 'off'>, from = -Infinity, to = Infinity): number {
  const within = (xs: readonly Interval[]) => xs.filter((x) => x.t >= from && x.t < to);
  return mean(within(a.on)) / mean(within(a.off));
}

/**
 * The alternating phase in one line: the ratio of the mean qps of the kept intervals, the same for each half of
 * the run (how steady it was), and how it was measured.
 */
export function alternatingLine(a: Alternating): string {
  const all = [...a.on, ...a.off].map((x) => x.t);
  const mid = (Math.min(...all) + Math.max(...all)) / 2;
  return `alternating 0 ↔ ${a.rate} changes/s every ${a.windowS} s inside one ${a.seconds} s dnsperf run (first ${a.skipS} s of each window left out): `
    + `qps ${f(mean(a.on))} at ${a.rate}/s ÷ ${f(mean(a.off))} at 0/s = ${f(alternatingRatio(a), 2)} (target >= 0.9; first half ${f(alternatingRatio(a, -Infinity, mid), 2)}, second half ${f(alternatingRatio(a, mid), 2)}; `
    + `medians ${f(median(a.on) / median(a.off), 2)}; ${a.on.length} and ${a.off.length} one-second intervals), server CPU ${f((100 * a.cpuOnS) / a.wallOnS)} % and ${f((100 * a.cpuOffS) / a.wallOffS)} %, `
    + `answers per CPU-s ÷ ${f((mean(a.on) * a.wallOnS / a.cpuOnS) / (mean(a.off) * a.wallOffS / a.cpuOffS), 2)}; `
    + `main thread ${f((100 * a.mainOnS) / a.wallOnS)} % and ${f((100 * a.mainOffS) / a.wallOffS)} % (other threads ${f((100 * (a.cpuOnS - a.mainOnS)) / a.wallOnS)} % and ${f((100 * (a.cpuOffS - a.mainOffS)) / a.wallOffS)} %), `
    + `answers per main-thread CPU-s ÷ ${f((mean(a.on) * a.wallOnS / a.mainOnS) / (mean(a.off) * a.wallOffS / a.mainOffS), 2)}, bench process (the fakes) ${f((100 * a.benchOnS) / a.wallOnS)} % and ${f((100 * a.benchOffS) / a.wallOffS)} % of a core, host idle ${f(a.idleOnPct, 1)} % and ${f(a.idleOffPct, 1)} %, host steal ${f(a.stealOnPct, 1)} % and ${f(a.stealOffPct, 1)} %; ${f(a.perf.lostPct, 2)} % of queries lost; changes ${a.issued}/${a.asked} issued, final answers ${a.converged}`;
}

/** Every touched service's A answer equals the applied readiness; waits for that (deadline bounds a hang). */
async function converge(client: DnsClient, port: number, state: Readiness, touched: Set<number>, deadlineMs = 30_000): Promise<string> {
  if (touched.size === 0) return '-';
  const t0 = performance.now();
  let pending = [...touched];
  while (pending.length > 0 && performance.now() - t0 < deadlineMs) {
    const next: number[] = [];
    for (const k of pending) {
      const r = await client.ask(port, `svc-${k}.service.${DOMAIN}`, 'A', 1000);
      if (!r || r.data.join() !== state.expectedA(k).join()) next.push(k);
    }
    pending = next;
    if (pending.length > 0) await sleep(50);
  }
  const ok = touched.size - pending.length;
  return `${ok}/${touched.size} in ${f((performance.now() - t0) / 1000, 1)} s`;
}

// ---- svcdns under the registry ----

async function startSvcdns(cfg: RealisticConfig, dir: string, backendYaml: string, env: NodeJS.ProcessEnv = {}, extra = ''): Promise<{ child: ChildProcess; port: number; admin: number }> {
  const port = await freePort();
  const admin = await freePort();
  const path = join(dir, 'svcdns.yaml');
  writeFileSync(path, `listen: "127.0.0.1:${port}"\nadmin: { listen: "127.0.0.1:${admin}" }\nlog: { level: warn }\n${extra}backends:\n${backendYaml}`);
  // BENCH_SVCDNS_ARGS: extra node flags for svcdns (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
  const nodeArgs = (process.env.BENCH_SVCDNS_ARGS ?? '').split(' ').filter((a) => a !== '');
  // The launchers' environment (SERVER_ENV), then BENCH_SVCDNS_ENV: `NAME=value` separated by spaces, e.g.
  // "MALLOC_ARENA_MAX=" to measure without it.
  const extraEnv = Object.fromEntries((process.env.BENCH_SVCDNS_ENV ?? '').split(' ').filter((a) => a.includes('=')).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
  const child = start(process.execPath, [...SERVER_NODE_FLAGS, ...nodeArgs, cfg.cli, '--config', path], 'svcdns', { env: { PATH: process.env.PATH ?? '', ...SERVER_ENV, ...extraEnv, ...env }, pin: 'server' });
  return { child, port, admin };
}

/** Wait until the last service answers with all its endpoints: the backend has synced everything. */
async function synced(client: DnsClient, port: number, state: Readiness, child: ChildProcess, deadlineMs = 180_000): Promise<void> {
  const k = state.services - 1;
  try {
    await waitReply(client, port, `svc-${k}.service.${DOMAIN}`, 'A', (r) => r.rcode === 'NOERROR' && r.data.join() === state.expectedA(k).join(), deadlineMs);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nsvcdns output: ${tailOf(child).slice(-1500)}`);
  }
}

async function loadPhase(cfg: RealisticConfig, server: string, port: number, admin: number | null, pid: number | undefined, qfile: string,
  driver: ChangeDriver | null, seconds: number, client: DnsClient | null, state: Readiness | null, group = false): Promise<Row> {
  const before = admin !== null ? await scrape(admin) : null;
  driver?.start();
  const cpu0 = cpuSeconds(pid, group);
  const thr0 = process.env.BENCH_DEBUG_GC && pid !== undefined ? cpuSecondsByThread(pid) : null;
  const host0 = hostCpu();
  const own0 = process.cpuUsage();
  const w0 = performance.now();
  const perf = await dnsperf(port, qfile, join(cfg.tmp, `dnsperf-${server}-${driver?.rate ?? 0}.out`),
    ['-c', '1', '-e', '-q', String(cfg.outstanding), '-l', String(seconds)], true, 'client');
  const wallS = (performance.now() - w0) / 1000;
  const cpuS = cpuSeconds(pid, group) - cpu0;
  const steal = stealPct(host0, hostCpu());
  const own = process.cpuUsage(own0);
  const benchCpuS = (own.user + own.system) / 1e6;
  const d = driver?.stop() ?? { asked: 0, issued: 0 };
  const after = admin !== null ? await scrape(admin) : null;
  let hitPct = NaN;
  let generations = NaN;
  let gcS = NaN;
  let fullGcs = NaN;
  const lagMaxMs = after ? metric(after, 'svcdns_nodejs_eventloop_lag_max_seconds') * 1000 : NaN;
  if (before && after) {
    const hits = metric(after, 'svcdns_dns_cache_hits_total') - metric(before, 'svcdns_dns_cache_hits_total');
    const misses = metric(after, 'svcdns_dns_cache_misses_total') - metric(before, 'svcdns_dns_cache_misses_total');
    hitPct = (100 * hits) / Math.max(1, hits + misses);
    generations = metric(after, 'svcdns_store_generation') - metric(before, 'svcdns_store_generation');
    gcS = metric(after, 'svcdns_nodejs_gc_duration_seconds_sum') - metric(before, 'svcdns_nodejs_gc_duration_seconds_sum');
    const full = 'svcdns_nodejs_gc_duration_seconds_count{kind="major"}';
    fullGcs = (after.get(full) ?? NaN) - (before.get(full) ?? NaN);
    if (thr0 && pid !== undefined) {
      // BENCH_DEBUG_GC=1: where the server's CPU went by thread, and its collections by kind.
      const thr1 = cpuSecondsByThread(pid);
      const parts = [[...thr1].map(([n, v]) => [n, v - (thr0.get(n) ?? 0)] as const).filter(([, v]) => v > 0.005).map(([n, v]) => `${n} ${f(v, 2)} s`).join(', ')];
      for (const kind of ['minor', 'major', 'incremental', 'weakcb']) {
        const c = `svcdns_nodejs_gc_duration_seconds_count{kind="${kind}"}`;
        const sm = `svcdns_nodejs_gc_duration_seconds_sum{kind="${kind}"}`;
        parts.push(`${kind} GC ${(after.get(c) ?? 0) - (before.get(c) ?? 0)}× ${f(((after.get(sm) ?? 0) - (before.get(sm) ?? 0)) * 1000)} ms`);
      }
      console.log(`    ${server}: ${parts.join('; ')}; heap used ${f(metric(after, 'svcdns_nodejs_heap_size_used_bytes') / 1048576, 1)} of ${f(metric(after, 'svcdns_nodejs_heap_size_total_bytes') / 1048576, 1)} MB`);
    }
  }
  const converged = driver && client && state ? await converge(client, port, state, driver.touched) : '-';
  return { server, rate: driver?.rate ?? 0, perf, hitPct, asked: d.asked, issued: d.issued, generations, converged, rssMb: rssMb(pid), cpuS, benchCpuS, lagMaxMs, wallS, gcS, fullGcs, stealPct: steal };
}

/** Watch event / health change → changed A answer over UDP, at full size, no other load. */
async function propagation(reg: Registry, client: DnsClient, port: number, state: Readiness, samples: number, gapMs: number, rand: () => number): Promise<{ p50: number; p99: number; max: number; n: number; timeouts: number }> {
  const times: number[] = [];
  let timeouts = 0;
  const DEADLINE_MS = 20_000;
  for (let i = 0; i < samples; i++) {
    const k = Math.floor(rand() * state.services);
    const name = `svc-${k}.service.${DOMAIN}`;
    await client.ask(port, name, 'A'); // the old answer is cached before the change
    const j = Math.floor(rand() * state.per);
    const t0 = reg.setReady(k, j, !state.get(k, j));
    const want = state.expectedA(k).join();
    let seen = false;
    while (performance.now() - t0 < DEADLINE_MS) {
      const r = await client.ask(port, name, 'A', 1000);
      if (r && r.data.join() === want) { seen = true; break; }
    }
    if (seen) times.push(performance.now() - t0); else timeouts++;
    if (gapMs > 0) await sleep(gapMs);
  }
  return { ...percentiles(times), timeouts };
}

/** Consul: a change that is not a health change (a port change of 3 services at once) → changed SRV answer. */
async function portChange(reg: Registry, client: DnsClient, port: number, state: Readiness, rand: () => number, deadlineMs: number): Promise<string> {
  if (!reg.setPort) return 'n/a';
  const ks = [0, 1, 2].map(() => Math.floor(rand() * state.services));
  for (const k of ks) await client.ask(port, `_http._tcp.svc-${k}.service.${DOMAIN}`, 'SRV');
  const t0 = performance.now();
  for (const k of ks) reg.setPort(k, 9090);
  const seen = await Promise.all(ks.map(async (k) => {
    while (performance.now() - t0 < deadlineMs) {
      const r: Reply | null = await client.ask(port, `_http._tcp.svc-${k}.service.${DOMAIN}`, 'SRV', 1000);
      if (r && r.data.length > 0 && r.data.every((d) => d.startsWith('9090 '))) return performance.now() - t0;
      await sleep(20);
    }
    return NaN;
  }));
  const ok = seen.filter(Number.isFinite);
  return `${ok.length}/${ks.length} seen within ${f(deadlineMs / 1000)} s${ok.length ? `: ${ok.map((x) => `${f(x)} ms`).join(', ')}` : ''}`;
}

/** Consul: another change that is not a health change (3 nodes re-registered with a new address) → changed A answer. */
async function nodeChange(reg: Registry, client: DnsClient, port: number, deadlineMs: number): Promise<string> {
  if (!reg.moveNode) return 'n/a';
  for (let s = 0; s < 3; s++) await client.ask(port, `nodesvc-${s}.service.${DOMAIN}`, 'A');
  const t0 = performance.now();
  const moved = [0, 1, 2].map((s) => reg.moveNode!(s));
  const seen = await Promise.all(moved.map(async ({ service, address }) => {
    while (performance.now() - t0 < deadlineMs) {
      const r: Reply | null = await client.ask(port, `${service}.service.${DOMAIN}`, 'A', 1000);
      if (r && r.data.length === 1 && r.data[0] === address) return performance.now() - t0;
      await sleep(20);
    }
    return NaN;
  }));
  const ok = seen.filter(Number.isFinite);
  return `${ok.length}/${moved.length} seen within ${f(deadlineMs / 1000)} s${ok.length ? `: ${ok.map((x) => `${f(x)} ms`).join(', ')}` : ''}`;
}

/** Measures the reference (NSD) right after a backend's 0 changes/s phase, so the ratio compares adjacent runs. */
export type Reference = (label: string) => Promise<Row | null>;

export async function runRegistry(kind: 'kubernetes' | 'consul', cfg: RealisticConfig, qfile: string, reference: Reference): Promise<BackendResult> {
  const dir = join(cfg.tmp, kind);
  mkdirSync(dir, { recursive: true });
  const state = new Readiness(cfg.services, cfg.perService);
  const tSeed = performance.now();
  const reg = kind === 'kubernetes' ? await kubeRegistry(state) : await consulRegistry(state);
  const seedMs = performance.now() - tSeed;
  const client = new DnsClient();
  const notes: string[] = [];
  let svc: ChildProcess | undefined;
  try {
    const t0 = performance.now();
    const s = await startSvcdns(cfg, dir, reg.backendYaml(dir));
    svc = s.child;
    await synced(client, s.port, state, s.child);
    const syncMs = performance.now() - t0;
    const rssAfterSyncMb = rssMb(s.child.pid);
    notes.push(`${kind} memory after sync (MB): ${memoryLine(await memoryBreakdown(s.admin, s.child.pid))}`);
    console.log(`${kind}: fake seeded with ${cfg.services} × ${cfg.perService} in ${f(seedMs / 1000, 1)} s; svcdns answered every service ${f(syncMs / 1000, 1)} s after spawn; RSS ${f(rssAfterSyncMb)} MB`);

    // Warm-up: one pass fills the answer cache and the JIT; not reported.
    await dnsperf(s.port, qfile, join(cfg.tmp, `warm-${kind}.out`), warmArgs(cfg), false, 'client');
    const rand = rng(kind === 'kubernetes' ? 101 : 202);
    const byRate = new Map<number, Row[]>();
    const refs: Row[] = [];
    for (let round = 1; round <= cfg.rounds; round++) for (const rate of cfg.rates) {
      const driver = new ChangeDriver(reg, state, rate, rand);
      const row = await loadPhase(cfg, `svcdns ${kind}`, s.port, s.admin, s.child.pid, qfile, driver, cfg.phaseSeconds, client, state);
      byRate.set(rate, [...(byRate.get(rate) ?? []), row]);
      console.log(`  round ${round}, ${rate}/s: ${f(row.perf.qps)} qps, hit ${f(row.hitPct, 1)} %, p50 ${f(row.perf.p50Ms, 3)} ms, p99 ${f(row.perf.p99Ms, 3)} ms, rcodes ${JSON.stringify(row.perf.rcodes)}, changes ${row.issued}/${row.asked}, generations +${f(row.generations)}, final answers ${row.converged}, server CPU ${f(row.cpuS, 1)} s of which GC ${f(row.gcS ?? NaN, 2)} s (${f(row.fullGcs ?? NaN)} full), event-loop lag max ${f(row.lagMaxMs, 1)} ms; the bench process (the fake, the change driver) ${f(row.benchCpuS, 1)} s; host steal ${f(row.stealPct, 1)} %`);
      if (rate === 0) {
        const ref = await reference(kind);
        if (ref) refs.push(ref);
      }
    }
    const rows: Row[] = [];
    for (const rate of cfg.rates) {
      rows.push(medianRow(byRate.get(rate)!));
      if (rate === 0 && refs.length > 0) rows.push(medianRow(refs));
    }

    const gap = kind === 'consul' ? 600 : 0; // Consul: one token per 500 ms per watch loop (burst 2), by design
    const m0 = await scrape(s.admin);
    const p = await propagation(reg, client, s.port, state, kind === 'consul' ? Math.min(20, cfg.propagationSamples) : cfg.propagationSamples, gap, rand);
    const what = kind === 'kubernetes' ? 'watch event written by the fake → changed A answer' : 'health check change in the fake → changed A answer';
    notes.push(`${kind} propagation at ${cfg.services} × ${cfg.perService}, ${what}: p50 ${f(p.p50, 1)} ms, p99 ${f(p.p99, 1)} ms, max ${f(p.max, 1)} ms (n=${p.n}${p.timeouts ? `, ${p.timeouts} not seen within 20 s` : ''}${gap ? `, ${gap} ms between changes` : ''})`);
    notes.push(`${kind} ${propagationMetric(m0, await scrape(s.admin), kind)}`);
    if (kind === 'consul') {
      // Node moves before the port change: the index sweep a port change starts would find their moved index too.
      const nc = await nodeChange(reg, client, s.port, 20_000);
      notes.push(`consul non-health change (3 nodes re-registered with a new address) → changed A answer: ${nc} (issue 11 item 5: target p99 < 5 s)`);
      const pc = await portChange(reg, client, s.port, state, rand, 20_000);
      notes.push(`consul non-health change (port of 3 services re-registered) → changed SRV answer: ${pc} (issue 11 item 5: target p99 < 5 s)`);
    }
    // Last: its 1,600 changes would otherwise leave more checks failing for the port change above than in the
    // runs before this phase existed.
    let alternating: Alternating | undefined;
    if (cfg.altSeconds > 0) {
      alternating = await alternatingPhase(cfg, kind, s.port, s.child.pid, qfile, reg, state, rand, client);
      console.log(`  ${alternatingLine(alternating)}`);
    }
    const rssAfterLoadMb = rssMb(s.child.pid);
    notes.push(`${kind} memory after the load phases (MB): ${memoryLine(await memoryBreakdown(s.admin, s.child.pid))}`);
    for (const n of notes) console.log(`  ${n}`);
    return { name: kind, rows, syncMs, rssAfterSyncMb, rssAfterLoadMb, notes, alternating };
  } finally {
    client.close();
    await stopChild(svc);
    await reg.stop();
  }
}

// ---- the file backend at the same size (a services file, no watch): load at 0 changes/s ----

export function writeServicesJson(path: string, services: number, per: number, port = 8080): void {
  const list = [];
  for (let k = 0; k < services; k++) {
    const instances = [];
    for (let j = 0; j < per; j++) instances.push({ address: addr(k, j), ports: { http: port } });
    list.push({ name: `svc-${k}`, instances });
  }
  writeFileSync(path, JSON.stringify({ services: list }));
}

// ---- NSD: the same names from a generated zone ----

export function nsdPath(): string | null {
  if (have('nsd')) return 'nsd';
  for (const p of ['/usr/sbin/nsd', '/usr/local/sbin/nsd']) if (have(p)) return p;
  return null;
}

export interface Nsd {
  /** One load phase against NSD (same query file, same dnsperf options), labelled with the backend beside it. */
  measure(label: string): Promise<Row>;
  stop(): Promise<void>;
}

/** Start NSD serving the same names from a generated zone; a string says why it could not (not installed). */
export async function startNsd(cfg: RealisticConfig, qfile: string): Promise<Nsd | string> {
  const bin = nsdPath();
  if (!bin) return 'NSD not installed: `apt-get install -y nsd` (Debian) adds the NSD column; skipped in this run';
  const dir = join(cfg.tmp, 'nsd');
  mkdirSync(dir, { recursive: true });
  const z: string[] = [
    `$ORIGIN ${DOMAIN}.`, '$TTL 5',
    `@ IN SOA ns.${DOMAIN}. hostmaster.${DOMAIN}. 1 3600 600 86400 5`, `@ IN NS ns.${DOMAIN}.`, 'ns IN A 127.0.0.1',
  ];
  for (let k = 0; k < cfg.services; k++) {
    for (let j = 0; j < cfg.perService; j++) {
      const a = addr(k, j);
      z.push(`svc-${k}.service IN A ${a}`, `_http._tcp.svc-${k}.service IN SRV 1 1 8080 ${a.replaceAll('.', '-')}.addr`, `${a.replaceAll('.', '-')}.addr IN A ${a}`);
    }
  }
  writeFileSync(join(dir, 'sd.internal.zone'), z.join('\n') + '\n');
  const port = await freePort();
  const conf = join(dir, 'nsd.conf');
  writeFileSync(conf, `server:
  ip-address: 127.0.0.1@${port}
  port: ${port}
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: ${JSON.stringify(dir)}
  database: ""
  zonelistfile: ${JSON.stringify(join(dir, 'zone.list'))}
  xfrdfile: ${JSON.stringify(join(dir, 'xfrd.state'))}
  xfrdir: ${JSON.stringify(dir)}
  pidfile: ${JSON.stringify(join(dir, 'nsd.pid'))}
  logfile: ${JSON.stringify(join(dir, 'nsd.log'))}
  verbosity: 0
  round-robin: yes
  # Response rate limiting is on by default (200 qps per /24): one loopback client would be rate limited.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  hide-version: yes
remote-control:
  control-enable: no
zone:
  name: ${DOMAIN}
  zonefile: sd.internal.zone
`);
  // Its own process group: NSD forks its server and xfrd processes, and they must go with it.
  const child = start(bin, ['-d', '-c', conf], 'nsd', { group: true, pin: 'server' });
  const client = new DnsClient();
  try {
    const k = cfg.services - 1;
    await waitReply(client, port, `svc-${k}.service.${DOMAIN}`, 'A', (r) => r.data.length === cfg.perService, 60_000);
    await dnsperf(port, qfile, join(cfg.tmp, 'warm-nsd.out'), warmArgs(cfg), false, 'client');
  } catch (e) {
    await stopChild(child);
    throw e;
  } finally {
    client.close();
  }
  return {
    async measure(label) {
      const row = await loadPhase(cfg, `NSD (beside ${label})`, port, null, child.pid, qfile, null, cfg.phaseSeconds, null, null, true);
      console.log(`  NSD beside ${label}: ${f(row.perf.qps)} qps, p50 ${f(row.perf.p50Ms, 3)} ms, p99 ${f(row.perf.p99Ms, 3)} ms, rcodes ${JSON.stringify(row.perf.rcodes)}; host steal ${f(row.stealPct, 1)} %`);
      return row;
    },
    stop: () => stopChild(child),
  };
}

/** Answers per CPU second of the server: throughput with the machine's other load factored out. */
export function perCpu(r: Row): number {
  return r.perf.completed / r.cpuS;
}

export function realisticTable(rows: Row[]): string {
  return table(
    ['server', 'changes/s', 'applied (issued/asked)', 'store generations (seen)', 'final answers right', 'qps (median; each round)', 'server CPU', 'answers per CPU-s', 'cache hit', 'p50 ms', 'p99 ms', 'lost', 'RSS MB', 'host steal'],
    rows.map((r) => [
      r.server, String(r.rate), r.rate ? `${r.issued}/${r.asked}` : '-', Number.isFinite(r.generations) ? `+${r.generations}` : '-', r.converged,
      r.roundsQps && r.roundsQps.length > 1 ? `${f(r.perf.qps)} (${r.roundsQps.map((q) => f(q)).join(', ')})` : f(r.perf.qps), `${f((100 * r.cpuS) / r.wallS)} %`, f(perCpu(r)), Number.isFinite(r.hitPct) ? `${f(r.hitPct, 1)} %` : '-', f(r.perf.p50Ms, 3), f(r.perf.p99Ms, 3), `${f(r.perf.lostPct, 2)} %`, f(r.rssMb), `${f(r.stealPct, 1)} %`,
    ]),
  );
}

export { loadPhase, startSvcdns, synced, Readiness };

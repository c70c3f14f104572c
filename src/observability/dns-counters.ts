// observability/dns-counters: the hot-path DNS counters as one flat Float64Array, so a worker thread can count
// into a SharedArrayBuffer that the main thread's /metrics sums at scrape time. One writer per block (the thread
// answering DNS); readers only add. No allocation per call.

import type { DnsMetrics } from '../dns/processor.ts';

/** Query types with their own label value; anything else counts as "other". */
export const QTYPES: readonly [number, string][] = [
  [1, 'A'], [2, 'NS'], [5, 'CNAME'], [6, 'SOA'], [12, 'PTR'], [15, 'MX'], [16, 'TXT'], [28, 'AAAA'],
  [33, 'SRV'], [35, 'NAPTR'], [64, 'SVCB'], [65, 'HTTPS'], [251, 'IXFR'], [252, 'AXFR'], [255, 'ANY'], [257, 'CAA'],
];
/** Label for qtype 0: the question could not be parsed (FORMERR/NOTIMP before the type is known). */
export const TYPE_LABELS = ['none', 'other', ...QTYPES.map(([, n]) => n)];
const TYPE_OTHER = 1;

/** RCODEs 0..16 (BADVERS is 16); index = rcode. */
export const RCODE_LABELS: readonly string[] = [
  'NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET',
  'NOTAUTH', 'NOTZONE', 'DSOTYPENI', 'RCODE12', 'RCODE13', 'RCODE14', 'RCODE15', 'BADVERS',
];
export const N_RCODES = RCODE_LABELS.length;

/** Answer latency buckets (seconds): a cache hit is a few µs, a miss tens of µs, a big SRV encode ~1 ms. */
export const ANSWER_LATENCY_BUCKETS_SECONDS = [
  0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05,
];

/** Histogram kept in a Float64Array; `observe` is a bucket scan and three stores, no allocation. */
export class FastHistogram {
  readonly bounds: Float64Array;
  /** Non-cumulative counts; the last slot is +Inf. Then [sum, count]. */
  readonly #cells: Float64Array;
  constructor(bounds: readonly number[], cells?: Float64Array) {
    this.bounds = Float64Array.from(bounds);
    this.#cells = cells ?? new Float64Array(bounds.length + 3);
  }
  static cellsFor(bounds: readonly number[]): number {
    return bounds.length + 3;
  }
  get counts(): Float64Array {
    return this.#cells.subarray(0, this.bounds.length + 1);
  }
  get sum(): number {
    return this.#cells[this.bounds.length + 1]!;
  }
  get count(): number {
    return this.#cells[this.bounds.length + 2]!;
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    const c = this.#cells;
    c[i]!++;
    c[b.length + 1]! += v;
    c[b.length + 2]!++;
  }
}

/**
 * Zone slots ("zone" label): slot 0 is "." (out of every configured domain, or no parsable question, like
 * CoreDNS's root zone); slots 1.. are configured domains in the order they were first configured (a reload adds
 * slots, never reuses one). Domains beyond the last slot count as ".".
 */
export const MAX_ZONES = 8;

/** Request and response size buckets (bytes), CoreDNS's (plugin/metrics/vars: 0 .. 64000). */
export const SIZE_BUCKETS_BYTES = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16_000, 32_000, 48_000, 64_000];
/** Request duration buckets (seconds): the answer latency bounds (µs for a cache hit) up to 50 ms. */
export const REQUEST_DURATION_BUCKETS_SECONDS = ANSWER_LATENCY_BUCKETS_SECONDS;

const N_TYPES = TYPE_LABELS.length;
const SIZE_CELLS = FastHistogram.cellsFor(SIZE_BUCKETS_BYTES);
const DURATION_CELLS = FastHistogram.cellsFor(REQUEST_DURATION_BUCKETS_SECONDS);

// Layout of the block (indices into the Float64Array).
/** [zone][type][rcode][transport] */
const RESPONSES = 0;
const N_RESPONSES = MAX_ZONES * N_TYPES * N_RCODES * 2;
const DROPPED = RESPONSES + N_RESPONSES; // [udp, tcp]
const TRUNCATED = DROPPED + 2; // [udp, tcp]
const CACHE = TRUNCATED + 2; // [miss, hit]
const INTERNAL_ERRORS = CACHE + 2;
const TCP_OPEN = INTERNAL_ERRORS + 1;
const TCP_ACCEPTED = TCP_OPEN + 1;
const QUERY_LOG = TCP_ACCEPTED + 1;
const CACHED_NAMES = QUERY_LOG + 1;
const LATENCY = CACHED_NAMES + 1;
/** [zone][proto][family][type]; family 0 = IPv4, 1 = IPv6. */
const REQUESTS = LATENCY + FastHistogram.cellsFor(ANSWER_LATENCY_BUCKETS_SECONDS);
const N_REQUESTS = MAX_ZONES * 2 * 2 * N_TYPES;
/** [zone][proto] → a size histogram each. */
const REQUEST_SIZE = REQUESTS + N_REQUESTS;
const RESPONSE_SIZE = REQUEST_SIZE + MAX_ZONES * 2 * SIZE_CELLS;
/** [zone][type] → a duration histogram each. */
const DURATION = RESPONSE_SIZE + MAX_ZONES * 2 * SIZE_CELLS;
/** dns/guard: ACL actions [allow, refuse, drop], rate-limited UDP responses [dropped, slipped], TCP per-source refusals. */
const ACL_ACTIONS = DURATION + MAX_ZONES * N_TYPES * DURATION_CELLS;
const RATE_LIMITED = ACL_ACTIONS + 3;
const TCP_PER_SOURCE = RATE_LIMITED + 2;
/** Bytes the thread's answer cache accounts for (a gauge, like CACHED_NAMES). */
const CACHED_BYTES = TCP_PER_SOURCE + 1;
const CELLS = CACHED_BYTES + 1;

/** qtype → index into TYPE_LABELS (shared, read-only after construction). */
const TYPE_INDEX = (() => {
  const t = new Uint8Array(65_536).fill(TYPE_OTHER);
  QTYPES.forEach(([q], i) => (t[q] = i + 2));
  t[0] = 0;
  return t;
})();

/** Index of `qtype` in TYPE_LABELS. */
export function typeIndex(qtype: number): number {
  return TYPE_INDEX[qtype & 0xffff]!;
}

/**
 * Add `v` (an integer: bytes or µs, so that the call passes a small integer and never boxes a double) to the
 * histogram of `bounds` (in the same unit) whose cells start at `base` (non-cumulative counts, +Inf, sum,
 * count); the sum is kept in `v × scale` (bytes, seconds).
 */
function observeAt(c: Float64Array, base: number, bounds: Int32Array, v: number, scale: number): void {
  let i = 0;
  while (i < bounds.length && v > bounds[i]!) i++;
  c[base + i]!++;
  c[base + bounds.length + 1]! += v * scale;
  c[base + bounds.length + 2]!++;
}

const SIZE_BOUNDS = Int32Array.from(SIZE_BUCKETS_BYTES);
/** The duration bounds in whole µs (they are multiples of 5 µs). */
const DURATION_BOUNDS_US = Int32Array.from(REQUEST_DURATION_BUCKETS_SECONDS, (s) => Math.round(s * 1e6));

/** One histogram read at scrape time, summed over blocks: cumulative bucket counts, sum and count. */
export interface HistogramReading {
  readonly cumulative: number[];
  sum: number;
  count: number;
}

export class DnsCounters implements DnsMetrics {
  readonly cells: Float64Array;
  readonly latency: FastHistogram;
  /** Called on an internal error (after counting), e.g. to log it rate-limited. */
  onInternalError: ((err: unknown, total: number) => void) | null = null;
  /**
   * The zone slot of the query being answered, set by the MeasuredProcessor before it hands the query on, so
   * that `response()` (called from inside the processor) counts it under its zone. One writer per block.
   */
  zone = 0;

  /** A block over `buffer` (a SharedArrayBuffer for a worker), or a private one. */
  constructor(buffer?: SharedArrayBuffer | ArrayBuffer) {
    this.cells = buffer ? new Float64Array(buffer, 0, CELLS) : new Float64Array(CELLS);
    this.latency = new FastHistogram(ANSWER_LATENCY_BUCKETS_SECONDS, this.cells.subarray(LATENCY, LATENCY + FastHistogram.cellsFor(ANSWER_LATENCY_BUCKETS_SECONDS)));
  }

  static sharedBuffer(): SharedArrayBuffer {
    return new SharedArrayBuffer(CELLS * Float64Array.BYTES_PER_ELEMENT);
  }

  // ---- DnsMetrics (hot path) ----

  response(qtype: number, rcode: number, tcp: boolean, truncated: boolean): void {
    const tr = tcp ? 1 : 0;
    const c = this.cells;
    if (rcode < 0) {
      c[DROPPED + tr]!++;
      return;
    }
    const rc = rcode < N_RCODES ? rcode : 0;
    c[RESPONSES + (((this.zone * N_TYPES + TYPE_INDEX[qtype & 0xffff]!) * N_RCODES + rc) * 2) + tr]!++;
    if (truncated) c[TRUNCATED + tr]!++;
  }

  cache(hit: boolean): void {
    this.cells[CACHE + (hit ? 1 : 0)]!++;
  }

  internalError(err: unknown): void {
    const total = ++this.cells[INTERNAL_ERRORS]!;
    this.onInternalError?.(err, total);
  }

  /**
   * One request message and what came of it (MeasuredProcessor, after the processor returned): `type` is a
   * TYPE_LABELS index, `v6` the client's address family, `responseBytes` -1 when nothing was sent, `micros`
   * the time to the encoded response in whole µs (an integer: passing a double would box it per call).
   */
  request(zone: number, tcp: boolean, v6: boolean, type: number, requestBytes: number, responseBytes: number, micros: number): void {
    const c = this.cells;
    const tr = tcp ? 1 : 0;
    c[REQUESTS + ((zone * 2 + tr) * 2 + (v6 ? 1 : 0)) * N_TYPES + type]!++;
    observeAt(c, REQUEST_SIZE + (zone * 2 + tr) * SIZE_CELLS, SIZE_BOUNDS, requestBytes, 1);
    if (responseBytes >= 0) {
      observeAt(c, RESPONSE_SIZE + (zone * 2 + tr) * SIZE_CELLS, SIZE_BOUNDS, responseBytes, 1);
      observeAt(c, DURATION + (zone * N_TYPES + type) * DURATION_CELLS, DURATION_BOUNDS_US, micros, 1e-6);
    }
  }

  // ---- other sources ----

  /** DnsServer.onTcpConnections: the open count after each open and close. */
  tcpConnections(open: number): void {
    const c = this.cells;
    if (open > c[TCP_OPEN]!) c[TCP_ACCEPTED]! += open - c[TCP_OPEN]!;
    c[TCP_OPEN] = open;
  }

  queryLogged(): void {
    this.cells[QUERY_LOG]!++;
  }

  // ---- dns/guard (GuardCounters) ----

  aclAction(action: number): void {
    this.cells[ACL_ACTIONS + action]!++;
  }

  rateLimited(slipped: boolean): void {
    this.cells[RATE_LIMITED + (slipped ? 1 : 0)]!++;
  }

  tcpPerSourceRefused(): void {
    this.cells[TCP_PER_SOURCE]!++;
  }

  set cachedNames(n: number) {
    this.cells[CACHED_NAMES] = n;
  }

  set cachedBytes(n: number) {
    this.cells[CACHED_BYTES] = n;
  }

  // ---- reading (scrape time) ----

  /** Responses of one (zone, type, rcode, transport) cell, summed over blocks. */
  static response(blocks: readonly DnsCounters[], zone: number, type: number, rcode: number, tr: number): number {
    return sum(blocks, RESPONSES + (((zone * N_TYPES + type) * N_RCODES + rcode) * 2) + tr);
  }
  /** Requests of one (zone, transport, family (0 = IPv4, 1 = IPv6), type) cell. */
  static requests(blocks: readonly DnsCounters[], zone: number, tr: number, family: number, type: number): number {
    return sum(blocks, REQUESTS + ((zone * 2 + tr) * 2 + family) * N_TYPES + type);
  }
  static requestSize(blocks: readonly DnsCounters[], zone: number, tr: number): HistogramReading {
    return read(blocks, REQUEST_SIZE + (zone * 2 + tr) * SIZE_CELLS, SIZE_BUCKETS_BYTES.length);
  }
  static responseSize(blocks: readonly DnsCounters[], zone: number, tr: number): HistogramReading {
    return read(blocks, RESPONSE_SIZE + (zone * 2 + tr) * SIZE_CELLS, SIZE_BUCKETS_BYTES.length);
  }
  static duration(blocks: readonly DnsCounters[], zone: number, type: number): HistogramReading {
    return read(blocks, DURATION + (zone * N_TYPES + type) * DURATION_CELLS, REQUEST_DURATION_BUCKETS_SECONDS.length);
  }
  static dropped(blocks: readonly DnsCounters[], tr: number): number {
    return sum(blocks, DROPPED + tr);
  }
  static truncated(blocks: readonly DnsCounters[], tr: number): number {
    return sum(blocks, TRUNCATED + tr);
  }
  static cacheCount(blocks: readonly DnsCounters[], hit: boolean): number {
    return sum(blocks, CACHE + (hit ? 1 : 0));
  }
  static internalErrors(blocks: readonly DnsCounters[]): number {
    return sum(blocks, INTERNAL_ERRORS);
  }
  static tcpOpen(blocks: readonly DnsCounters[]): number {
    return sum(blocks, TCP_OPEN);
  }
  static tcpAccepted(blocks: readonly DnsCounters[]): number {
    return sum(blocks, TCP_ACCEPTED);
  }
  static queryLogged(blocks: readonly DnsCounters[]): number {
    return sum(blocks, QUERY_LOG);
  }
  /** Queries an ACL took `action` on (0 allow, 1 refuse, 2 drop). */
  static aclActions(blocks: readonly DnsCounters[], action: number): number {
    return sum(blocks, ACL_ACTIONS + action);
  }
  static rateLimited(blocks: readonly DnsCounters[], slipped: boolean): number {
    return sum(blocks, RATE_LIMITED + (slipped ? 1 : 0));
  }
  static tcpPerSourceRefused(blocks: readonly DnsCounters[]): number {
    return sum(blocks, TCP_PER_SOURCE);
  }
  static cachedNames(blocks: readonly DnsCounters[]): number {
    return sum(blocks, CACHED_NAMES);
  }
  static cachedBytes(blocks: readonly DnsCounters[]): number {
    return sum(blocks, CACHED_BYTES);
  }
}

function sum(blocks: readonly DnsCounters[], i: number): number {
  let s = 0;
  for (const b of blocks) s += b.cells[i]!;
  return s;
}

function read(blocks: readonly DnsCounters[], base: number, nBounds: number): HistogramReading {
  const cumulative = new Array<number>(nBounds + 1).fill(0);
  let total = 0;
  let count = 0;
  for (const b of blocks) {
    const c = b.cells;
    let acc = 0;
    for (let i = 0; i <= nBounds; i++) {
      acc += c[base + i]!;
      cumulative[i]! += acc;
    }
    total += c[base + nBounds + 1]!;
    count += c[base + nBounds + 2]!;
  }
  return { cumulative, sum: total, count };
}

/**
 * The zone slots of one thread: slot → label ("." then each configured domain with its trailing dot), and the
 * domains in effect now, in wire form for matching a question without decoding it. A reload calls `update`
 * with the new domains: a domain seen before keeps its slot, a new one takes the next free slot (so the main
 * thread and each worker, fed the same sequence of domain lists, agree on the slots), a removed one stops
 * matching but keeps its slot and its counts.
 */
export class ZoneSlots {
  readonly labels: string[] = ['.'];
  /** Domains in effect, longest first: lowercase wire form (with the root label) and slot. */
  active: readonly { readonly wire: Uint8Array; readonly slot: number }[] = [];

  constructor(domains: readonly string[] = []) {
    this.update(domains);
  }

  update(domains: readonly string[]): void {
    const active: { wire: Uint8Array; slot: number }[] = [];
    for (const d of domains) {
      const name = d.toLowerCase().replace(/\.$/, '');
      if (name === '') continue;
      let slot = this.labels.indexOf(`${name}.`);
      if (slot < 0 && this.labels.length < MAX_ZONES) slot = this.labels.push(`${name}.`) - 1;
      if (slot < 0) continue; // beyond MAX_ZONES: counted as "."
      const parts = name.split('.');
      const wire = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 1));
      let o = 0;
      for (const p of parts) {
        wire[o++] = p.length;
        for (let i = 0; i < p.length; i++) wire[o++] = p.charCodeAt(i);
      }
      active.push({ wire, slot });
    }
    this.active = active.sort((a, b) => b.wire.length - a.wire.length);
  }
}

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

// Layout of the block (indices into the Float64Array).
const RESPONSES = 0;
const N_RESPONSES = TYPE_LABELS.length * N_RCODES * 2;
const DROPPED = RESPONSES + N_RESPONSES; // [udp, tcp]
const TRUNCATED = DROPPED + 2; // [udp, tcp]
const CACHE = TRUNCATED + 2; // [miss, hit]
const INTERNAL_ERRORS = CACHE + 2;
const TCP_OPEN = INTERNAL_ERRORS + 1;
const TCP_ACCEPTED = TCP_OPEN + 1;
const QUERY_LOG = TCP_ACCEPTED + 1;
const CACHED_NAMES = QUERY_LOG + 1;
const LATENCY = CACHED_NAMES + 1;
const CELLS = LATENCY + FastHistogram.cellsFor(ANSWER_LATENCY_BUCKETS_SECONDS);

/** qtype → index into TYPE_LABELS (shared, read-only after construction). */
const TYPE_INDEX = (() => {
  const t = new Uint8Array(65_536).fill(TYPE_OTHER);
  QTYPES.forEach(([q], i) => (t[q] = i + 2));
  t[0] = 0;
  return t;
})();

export class DnsCounters implements DnsMetrics {
  readonly cells: Float64Array;
  readonly latency: FastHistogram;
  /** Called on an internal error (after counting), e.g. to log it rate-limited. */
  onInternalError: ((err: unknown, total: number) => void) | null = null;

  /** A block over `buffer` (a SharedArrayBuffer for a worker), or a private one. */
  constructor(buffer?: SharedArrayBuffer | ArrayBuffer) {
    this.cells = buffer ? new Float64Array(buffer, 0, CELLS) : new Float64Array(CELLS);
    this.latency = new FastHistogram(ANSWER_LATENCY_BUCKETS_SECONDS, this.cells.subarray(LATENCY, CELLS));
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
    c[RESPONSES + (TYPE_INDEX[qtype & 0xffff]! * N_RCODES + rc) * 2 + tr]!++;
    if (truncated) c[TRUNCATED + tr]!++;
  }

  cache(hit: boolean): void {
    this.cells[CACHE + (hit ? 1 : 0)]!++;
  }

  internalError(err: unknown): void {
    const total = ++this.cells[INTERNAL_ERRORS]!;
    this.onInternalError?.(err, total);
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

  set cachedNames(n: number) {
    this.cells[CACHED_NAMES] = n;
  }

  // ---- reading (scrape time) ----

  static response(blocks: readonly DnsCounters[], type: number, rcode: number, tr: number): number {
    return sum(blocks, RESPONSES + (type * N_RCODES + rcode) * 2 + tr);
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
  static cachedNames(blocks: readonly DnsCounters[]): number {
    return sum(blocks, CACHED_NAMES);
  }
}

function sum(blocks: readonly DnsCounters[], i: number): number {
  let s = 0;
  for (const b of blocks) s += b.cells[i]!;
  return s;
}

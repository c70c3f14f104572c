// observability/measured-processor: the QueryProcessor the listeners hold. Times every query into the answer
// latency histogram, hands sampled queries to the query log when one is configured, and — after a config reload
// changed answer options — forwards to the rebuilt processor, so listeners never have to be rebound.
//
// It is a subclass (DnsServer takes a QueryProcessor) that is itself the initial processor: until `swap()` is
// called it runs `super.process`, afterwards the replacement's. Costs per query: two performance.now() calls,
// a bucket scan over 12 bounds, and one null check for the query log (no call, no closure when it is off).

import { QueryProcessor, type ProcessorOptions } from '../dns/processor.ts';
import type { FastHistogram } from './metrics.ts';
import type { QueryLog } from './query-log.ts';

export class MeasuredProcessor extends QueryProcessor {
  readonly #latency: FastHistogram | null;
  #next: QueryProcessor | null = null;
  #queryLog: QueryLog | null = null;
  #random: () => number;

  constructor(opts: ProcessorOptions, latency: FastHistogram | null) {
    super(opts);
    this.#latency = latency;
    this.#random = opts.random ?? Math.random;
  }

  /** The processor answering now (this one, or its replacement after a reload). */
  get current(): QueryProcessor {
    return this.#next ?? this;
  }

  override get cachedNames(): number {
    return this.#next === null ? super.cachedNames : this.#next.cachedNames;
  }

  /** Route queries to `next` from now on (its cache starts empty: answer options changed). */
  swap(next: QueryProcessor): void {
    this.#next = next;
    super.clearCache(); // never read again: free it
  }

  /** Turn the query log on (a QueryLog) or off (null). The caller closes the previous one. */
  setQueryLog(log: QueryLog | null): void {
    this.#queryLog = log;
  }

  override process(msg: Buffer, len: number, tcp: boolean): Buffer | null {
    const t0 = performance.now();
    const next = this.#next;
    const out = next === null ? super.process(msg, len, tcp) : next.process(msg, len, tcp);
    const ms = performance.now() - t0;
    if (this.#latency !== null) this.#latency.observe(ms / 1000);
    const log = this.#queryLog;
    if (log !== null && this.#random() < log.sampleRate) log.record(msg, len, tcp, out, ms * 1000);
    return out;
  }
}

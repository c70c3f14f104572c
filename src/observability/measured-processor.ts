// observability/measured-processor: the QueryProcessor the listeners hold. Counts every request message by
// zone, transport, client address family and type (svcdns_dns_requests_total, the size and duration
// histograms), times it
// into the answer latency histogram, hands sampled queries to the query log when one is configured, and — after
// a config reload changed answer options — forwards to the rebuilt processor, so listeners never have to be
// rebound.
//
// It is a subclass (DnsServer takes a QueryProcessor) that is itself the initial processor: until `swap()` is
// called it runs `super.process`, afterwards the replacement's. Costs per query: two
// performance.now() calls, a walk over the question's label lengths and a byte compare per configured domain
// (the zone), three bucket scans, and one null check for the query log. No allocation.

import { QueryProcessor, type ProcessorOptions } from '../dns/processor.ts';
import { DnsCounters, typeIndex, ZoneSlots } from './dns-counters.ts';
import type { FastHistogram } from './metrics.ts';
import type { QueryLog } from './query-log.ts';

/** The client of a query (dns/server's Peer: dgram's rinfo, or one object per TCP connection). */
interface Peer {
  readonly address: string;
  readonly port: number;
  readonly family: string;
}

/** Most labels a question name can have (255-byte names, 1-byte labels plus length bytes). */
const MAX_LABELS = 128;

export class MeasuredProcessor extends QueryProcessor {
  readonly #latency: FastHistogram | null;
  readonly #counters: DnsCounters | null;
  readonly zones: ZoneSlots;
  readonly #labelStarts = new Int32Array(MAX_LABELS);
  /** TYPE_LABELS index of the question last parsed by #zoneOf. */
  #type = 0;
  #next: QueryProcessor | null = null;
  #queryLog: QueryLog | null = null;
  #random: () => number;

  /**
   * `counters`: the block this thread counts into (its latency histogram too), or a bare histogram / null to
   * time only. `zones`: the configured domains, or a ZoneSlots shared with the Metrics that label them.
   */
  constructor(opts: ProcessorOptions, counters: DnsCounters | FastHistogram | null, zones: ZoneSlots | readonly string[] = []) {
    super(opts);
    this.#counters = counters instanceof DnsCounters ? counters : null;
    this.#latency = counters instanceof DnsCounters ? counters.latency : counters;
    this.zones = zones instanceof ZoneSlots ? zones : new ZoneSlots(zones);
    this.#random = opts.random ?? Math.random;
  }

  /** The processor answering now (this one, or its replacement after a reload). */
  get current(): QueryProcessor {
    return this.#next ?? this;
  }

  override get cachedNames(): number {
    return this.#next === null ? super.cachedNames : this.#next.cachedNames;
  }

  override get cachedBytes(): number {
    return this.#next === null ? super.cachedBytes : this.#next.cachedBytes;
  }

  /**
   * Route queries to `next` from now on (its cache starts empty: answer options changed). `domains`: the
   * domains in effect from now on, when they may have changed.
   */
  swap(next: QueryProcessor, domains?: readonly string[]): void {
    this.#next = next;
    if (domains !== undefined) this.zones.update(domains);
    super.clearCache(); // never read again: free it
  }

  /** Turn the query log on (a QueryLog) or off (null). The caller closes the previous one. */
  setQueryLog(log: QueryLog | null): void {
    this.#queryLog = log;
  }

  /** `peer`: the client as the listener received it (its family labels the request; the query log records it). */
  override process(msg: Buffer, len: number, tcp: boolean, peer?: Peer): Buffer | null {
    const t0 = performance.now();
    const c = this.#counters;
    let zone = 0;
    if (c !== null) {
      zone = this.#zoneOf(msg, len);
      c.zone = zone;
    }
    const next = this.#next;
    const out = next === null ? super.process(msg, len, tcp) : next.process(msg, len, tcp);
    const ms = performance.now() - t0;
    if (this.#latency !== null) this.#latency.observe(ms / 1000);
    if (c !== null) c.request(zone, tcp, peer !== undefined && peer.family === 'IPv6', this.#type, len, out === null ? -1 : out.length, (ms * 1000) | 0);
    const log = this.#queryLog;
    if (log !== null && this.#random() < log.sampleRate) log.record(msg, len, tcp, out, ms * 1000, peer);
    return out;
  }

  /**
   * The zone slot of the message's first question (0 = "."), read from the wire: label lengths walked, the
   * suffix compared case-insensitively with each domain in effect, longest first. Sets #type.
   */
  #zoneOf(msg: Buffer, len: number): number {
    this.#type = 0;
    if (len < 17 || (msg[4]! | msg[5]!) === 0) return 0;
    const starts = this.#labelStarts;
    let n = 0;
    let off = 12;
    for (;;) {
      if (off >= len) return 0;
      const l = msg[off]!;
      if (l === 0) break;
      if (l > 63 || n === MAX_LABELS) return 0; // a compression pointer or garbage: no zone
      starts[n++] = off;
      off += l + 1;
    }
    const end = off + 1; // past the root label
    if (end + 2 > len) return 0;
    this.#type = typeIndex((msg[end]! << 8) | msg[end + 1]!);
    const active = this.zones.active;
    for (let z = 0; z < active.length; z++) {
      const w = active[z]!.wire;
      const at = end - w.length;
      if (at < 12) continue;
      let boundary = false;
      for (let i = 0; i < n; i++) {
        if (starts[i] === at) {
          boundary = true;
          break;
        }
        if (starts[i]! > at) break;
      }
      if (!boundary) continue;
      let k = 0;
      for (; k < w.length; k++) {
        let b = msg[at + k]!;
        if (b >= 65 && b <= 90) b |= 0x20;
        if (b !== w[k]) break;
      }
      if (k === w.length) return active[z]!.slot;
    }
    return 0;
  }
}

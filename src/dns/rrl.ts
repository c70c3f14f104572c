// dns/rrl: response rate limiting (`rateLimit:`) for UDP, after NSD's and Knot's RRL — one token bucket per
// (client netblock, response class) in a fixed-size, 4-way set-associative table, so memory never grows with
// the number of sources (a spoofed flood from random addresses only recycles buckets). A limited response is
// dropped, except every `slip`-th, which is sent as an empty TC=1 answer so a real client retries over TCP
// (never rate limited). The clock is injected; the table is typed arrays: no allocation per query.

import { z } from 'zod';
import { compilePrefixes, maskWords, prefixContains, prefixSchema, type Family, type Prefix } from './cidr.ts';

/** Response classes, each with its own bucket per netblock (BIND's responses/nodata/nxdomains/errors). */
export const RRL_CLASS = { POSITIVE: 0, NODATA: 1, NXDOMAIN: 2, ERROR: 3 } as const;
export type RrlClass = (typeof RRL_CLASS)[keyof typeof RRL_CLASS];

/** Verdict on one UDP response. */
export const RRL = { PASS: 0, DROP: 1, SLIP: 2 } as const;
export type RrlVerdict = (typeof RRL)[keyof typeof RRL];

const rate = z.number().positive().max(1_000_000);

export const rateLimitSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    /** Positive answers per second per netblock (NSD's rrl-ratelimit: 200). Fractions allowed. */
    responsesPerSecond: rate.default(200),
    /** NODATA, NXDOMAIN and error (REFUSED, SERVFAIL, FORMERR...) answers per second; default responsesPerSecond. */
    nodataPerSecond: rate.optional(),
    nxdomainsPerSecond: rate.optional(),
    errorsPerSecond: rate.optional(),
    /** Bucket size in responses (what a netblock may send at once); default: one second at its class's rate. */
    burst: z.number().int().min(1).max(1_000_000).optional(),
    /** Netblock a bucket covers: clients inside one /24 (IPv4) or /56 (IPv6) share their buckets. */
    ipv4PrefixLength: z.number().int().min(8).max(32).default(24),
    ipv6PrefixLength: z.number().int().min(16).max(128).default(56),
    /** Every slip-th limited response goes out empty with TC=1 (the client retries over TCP); 0: drop all. */
    slip: z.number().int().min(0).max(10).default(2),
    /** Buckets in the table (a power of two): memory is 49 bytes each, fixed at start. */
    tableSize: z.number().int().min(1024).max(16_777_216).refine((n) => (n & (n - 1)) === 0, { message: 'must be a power of two' }).default(65_536),
    /** Clients never limited (monitoring, your resolvers). */
    exempt: z.array(prefixSchema).default([]),
  })
  .default({ enabled: false, responsesPerSecond: 200, ipv4PrefixLength: 24, ipv6PrefixLength: 56, slip: 2, tableSize: 65_536, exempt: [] });
export type RateLimitConfig = z.output<typeof rateLimitSchema>;

/** Ways per set: a new netblock evicts the least recently used of these four. */
const WAYS = 4;

/** The class of an encoded response, read from its header (RCODE, ANCOUNT). */
export function responseClass(out: Uint8Array): RrlClass {
  const rcode = out[3]! & 0x0f;
  if (rcode === 0) return ((out[6]! | out[7]!) !== 0 ? RRL_CLASS.POSITIVE : RRL_CLASS.NODATA);
  return rcode === 3 ? RRL_CLASS.NXDOMAIN : RRL_CLASS.ERROR;
}

export class RateLimiter {
  readonly #now: () => number;
  readonly #exempt: readonly Prefix[];
  readonly #v4Len: number;
  readonly #v6Len: number;
  readonly #slip: number;
  /** Per class: tokens per ms, and bucket capacity. */
  readonly #perMs = new Float64Array(4);
  readonly #cap = new Float64Array(4);
  readonly #setMask: number;
  /** Per bucket: the netblock's 4 words, a tag (0 empty; family << 2 | class, + 1), tokens, last refill ms, limited count. */
  readonly #keys: Uint32Array;
  readonly #tag: Uint8Array;
  readonly #tokens: Float64Array;
  readonly #last: Float64Array;
  readonly #limited: Uint32Array;
  /** Per bucket: when it was last used, in checks (LRU within a set; a clock can stand still between checks). */
  readonly #used: Float64Array;
  #tick = 0;
  readonly #masked = new Uint32Array(4);

  constructor(cfg: RateLimitConfig, now: () => number) {
    this.#now = now;
    this.#exempt = compilePrefixes(cfg.exempt);
    this.#v4Len = cfg.ipv4PrefixLength;
    this.#v6Len = cfg.ipv6PrefixLength;
    this.#slip = cfg.slip;
    const rates = [cfg.responsesPerSecond, cfg.nodataPerSecond, cfg.nxdomainsPerSecond, cfg.errorsPerSecond];
    for (let c = 0; c < 4; c++) {
      const r = rates[c] ?? cfg.responsesPerSecond;
      this.#perMs[c] = r / 1000;
      this.#cap[c] = cfg.burst ?? Math.max(1, r);
    }
    const n = cfg.tableSize;
    this.#setMask = n / WAYS - 1;
    this.#keys = new Uint32Array(n * 4);
    this.#tag = new Uint8Array(n);
    this.#tokens = new Float64Array(n);
    this.#last = new Float64Array(n);
    this.#limited = new Uint32Array(n);
    this.#used = new Float64Array(n);
  }

  /** Bytes held by the table (fixed at construction). */
  get tableBytes(): number {
    return this.#keys.byteLength + this.#tag.byteLength + this.#tokens.byteLength + this.#last.byteLength + this.#limited.byteLength + this.#used.byteLength;
  }

  /** Whether `addr` is on the exempt list (checked once per UDP packet by the listener, before `check`). */
  exempt(family: Family, addr: Uint32Array): boolean {
    const e = this.#exempt;
    for (let i = 0; i < e.length; i++) if (prefixContains(e[i]!, family, addr)) return true;
    return false;
  }

  /** Take one token for a response of class `cls` to `addr` (family 4 or 6). */
  check(family: Family, addr: Uint32Array, cls: RrlClass): RrlVerdict {
    if (family === 0) return RRL.PASS;
    const k = this.#masked;
    k[0] = addr[0]!;
    k[1] = addr[1]!;
    k[2] = addr[2]!;
    k[3] = addr[3]!;
    maskWords(k, family, family === 4 ? this.#v4Len : this.#v6Len);
    const tag = ((family === 6 ? 1 : 0) << 2 | cls) + 1;
    // FNV-1a over the words and the tag.
    let h = 0x811c9dc5 ^ tag;
    for (let i = 0; i < 4; i++) h = Math.imul(h ^ k[i]!, 0x01000193);
    h ^= h >>> 15;
    const base = ((h >>> 0) & this.#setMask) * WAYS;
    const now = this.#now();
    const keys = this.#keys;
    const tags = this.#tag;
    const last = this.#last;
    const used = this.#used;
    let slot = -1;
    let victim = base;
    for (let w = base; w < base + WAYS; w++) {
      if (tags[w] === tag && keys[w * 4] === k[0] && keys[w * 4 + 1] === k[1] && keys[w * 4 + 2] === k[2] && keys[w * 4 + 3] === k[3]) {
        slot = w;
        break;
      }
      if (tags[w] === 0) {
        if (tags[victim] !== 0) victim = w;
      } else if (tags[victim] !== 0 && used[w]! < used[victim]!) victim = w;
    }
    const tokens = this.#tokens;
    used[slot < 0 ? victim : slot] = ++this.#tick;
    if (slot < 0) {
      slot = victim;
      tags[slot] = tag;
      keys[slot * 4] = k[0]!;
      keys[slot * 4 + 1] = k[1]!;
      keys[slot * 4 + 2] = k[2]!;
      keys[slot * 4 + 3] = k[3]!;
      tokens[slot] = this.#cap[cls]!;
      last[slot] = now;
      this.#limited[slot] = 0;
    } else {
      const elapsed = now - last[slot]!;
      if (elapsed > 0) {
        tokens[slot] = Math.min(this.#cap[cls]!, tokens[slot]! + elapsed * this.#perMs[cls]!);
        last[slot] = now;
      }
    }
    if (tokens[slot]! >= 1) {
      tokens[slot]!--;
      return RRL.PASS;
    }
    const n = ++this.#limited[slot]!;
    return this.#slip > 0 && n % this.#slip === 0 ? RRL.SLIP : RRL.DROP;
  }
}

/**
 * The slipped form of UDP response `out`: its header with TC=1 and every count but QDCOUNT zero, and its
 * question — no records, no OPT. The client retries over TCP, where it is never limited.
 */
export function slipResponse(out: Buffer): Buffer {
  let end = 12;
  const qd = (out[4]! << 8) | out[5]!;
  if (qd > 0) {
    while (end < out.length) {
      const l = out[end]!;
      if (l === 0) {
        end++;
        break;
      }
      if ((l & 0xc0) === 0xc0) {
        end += 2;
        break;
      }
      end += l + 1;
    }
    end = Math.min(out.length, end + 4);
  }
  const s = Buffer.allocUnsafe(end);
  out.copy(s, 0, 0, end);
  s[2] = s[2]! | 0x02;
  s[3] = s[3]! & 0xf0; // NOERROR: the answer comes over TCP
  s[4] = 0;
  s[5] = qd > 0 ? 1 : 0;
  s.fill(0, 6, 12);
  return s;
}

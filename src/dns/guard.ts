// dns/guard: what the listeners check around the answer pipeline, built from the same config in the main thread
// and in every worker (DnsServer builds one per server): the client ACL before any answer work (acl.ts), the
// UDP response rate limit after it (rrl.ts), and the per-source TCP connection cap. Owns the per-packet parse of
// the source address into scratch words; no allocation per query except the REFUSED or slipped reply itself.

import { Acl, ACL, type AclAction, type AclConfig } from './acl.ts';
import { parseAddress, type Family } from './cidr.ts';
import { encodeBare } from './encode.ts';
import { RateLimiter, RRL, responseClass, slipResponse, type RateLimitConfig } from './rrl.ts';
import { parseQuery, PARSE, Query } from './wire.ts';

/** Where the guard counts what it did (DnsCounters implements it). Must not throw or allocate. */
export interface GuardCounters {
  /** One query evaluated against a configured ACL, and the action taken. */
  aclAction(action: AclAction): void;
  /** One UDP response the rate limiter held back: dropped, or sent empty with TC=1 (slipped). */
  rateLimited(slipped: boolean): void;
  /** A TCP connection closed at once because its source address already had its quota. */
  tcpPerSourceRefused(): void;
}

/** The config a guard is built from (plain data: it crosses into workers). */
export interface GuardConfig {
  readonly acl: AclConfig;
  readonly rateLimit: RateLimitConfig;
}

/** A parsed client address: the listener keeps one per TCP connection, and one scratch for UDP. */
export class ClientAddress {
  family: Family = 0;
  readonly words = new Uint32Array(4);
  readonly #groups = new Uint16Array(8);
  set(address: string): this {
    this.family = parseAddress(address, this.words, this.#groups);
    return this;
  }
}

export class Guard {
  readonly #acl: Acl | null;
  readonly #rrl: RateLimiter | null;
  readonly #counters: GuardCounters | null;
  readonly #q = new Query();
  readonly #nameScratch = Buffer.alloc(256);
  readonly #scratch = Buffer.alloc(512);
  readonly #maxUdp: number;

  constructor(cfg: GuardConfig, counters: GuardCounters | null, now: () => number, maxUdpPayloadBytes = 1232) {
    const acl = new Acl(cfg.acl);
    this.#acl = acl.empty ? null : acl;
    this.#rrl = cfg.rateLimit.enabled ? new RateLimiter(cfg.rateLimit, now) : null;
    this.#counters = counters;
    this.#maxUdp = maxUdpPayloadBytes;
  }

  /** Anything to check per query (else the listener skips the address parse too). */
  get active(): boolean {
    return this.#acl !== null || this.#rrl !== null;
  }

  get rateLimiting(): boolean {
    return this.#rrl !== null;
  }

  /**
   * The ACL's verdict on a message from `client`, before it reaches the processor. The query type is read from
   * the wire only when some rule lists types.
   */
  admit(msg: Buffer, len: number, client: ClientAddress): AclAction {
    const acl = this.#acl;
    if (acl === null) return ACL.ALLOW;
    let qtype = -1;
    if (acl.needsType) qtype = questionType(msg, len);
    const a = acl.check(client.family, client.words, qtype);
    this.#counters?.aclAction(a);
    return a;
  }

  /** REFUSED for a message the ACL refuses (question and OPT echoed per §5.6), or null: not answerable (§5.5). */
  refusal(msg: Buffer, len: number): Buffer | null {
    const q = this.#q;
    q.resetName(this.#nameScratch);
    const st = parseQuery(msg, len, q, this.#nameScratch);
    if (st === PARSE.DROP) return null;
    const ok = st === PARSE.OK;
    return encodeBare(this.#scratch, msg, q, 5 /* REFUSED */, ok, ok && q.edns, this.#maxUdp);
  }

  /** What to send for UDP response `out` to `client`: `out`, its slipped form, or null (dropped). */
  limit(out: Buffer, client: ClientAddress): Buffer | null {
    const rrl = this.#rrl;
    if (rrl === null || rrl.exempt(client.family, client.words)) return out;
    const v = rrl.check(client.family, client.words, responseClass(out));
    if (v === RRL.PASS) return out;
    this.#counters?.rateLimited(v === RRL.SLIP);
    return v === RRL.SLIP ? slipResponse(out) : null;
  }
}

/** QTYPE of the message's single question, read without parsing the rest; -1 when there is none readable. */
export function questionType(msg: Uint8Array, len: number): number {
  if (len < 17 || msg[4] !== 0 || msg[5] !== 1) return -1;
  let off = 12;
  for (let labels = 0; labels < 128; labels++) {
    if (off >= len) return -1;
    const l = msg[off]!;
    if (l === 0) {
      off++;
      return off + 2 <= len ? (msg[off]! << 8) | msg[off + 1]! : -1;
    }
    if (l > 63) return -1; // a pointer cannot appear in the first name of a query
    off += l + 1;
  }
  return -1;
}

// dns/processor: packet in → packet out. Applies the wire-level rules (§4, §5.5, §5.6), serves encoded answers
// from the cache, and asks the Responder only on a miss. Never throws: an internal error becomes SERVFAIL.
//
// Cache (architecture rule 3): entries hold the fully encoded response variants for one
// (name, type, class, size limit, EDNS, DO); a hit copies a variant and patches the ID, the echoed flags, the
// question bytes (the client's letter case) and the SOA serial. Each name is indexed under the change keys its
// answers were read from (Plan.deps); when the generation moves, exactly the names under the keys that changed
// are dropped (Responder.changedSince), so no cached answer outlives the data behind it and what the change did
// not touch stays cached (§6.4).

import { LRUCache } from 'lru-cache';
import { encode, encodeBare, orderings, shuffled, SCRATCH_BYTES, MAX_MESSAGE_BYTES } from './encode.ts';
import type { Order, Plan, Rec, Responder } from './plan.ts';
import { CLASS, CLASSIC_UDP_BYTES, HEADER_BYTES, PARSE, parseQuery, Query, RCODE, TYPE } from './wire.ts';

/** Counters the processor reports; implemented by observability (plain numbers, no allocation per call). */
export interface DnsMetrics {
  /** One response sent (or dropped when `rcode` is -1). */
  response(qtype: number, rcode: number, tcp: boolean, truncated: boolean): void;
  cache(hit: boolean): void;
  /** An exception inside the handler, turned into SERVFAIL. */
  internalError(err: unknown): void;
}

export const noopMetrics: DnsMetrics = {
  response() {},
  cache() {},
  internalError() {},
};

export interface ProcessorOptions {
  responder: Responder;
  /** Our EDNS UDP payload size and the cap on client-advertised sizes (§4.2). */
  maxUdpPayloadBytes: number;
  order: Order;
  /** Bytes of encoded answers kept (default 64 MiB). */
  cacheBytes?: number;
  metrics?: DnsMetrics;
  random?: () => number;
  /** Called once per generation, at the first query answered from it (end-to-end propagation, issue 14 #4). */
  onGeneration?: ((generation: number) => void) | undefined;
}

interface Slot {
  // The key within a name. Not the class (IN and ANY get the same records, and the question is the client's
  // own bytes) nor the DO bit (patched into our OPT at serve time): a client cycling them must not force a miss
  // per query (issue 11 #6).
  readonly qtype: number;
  readonly limit: number;
  readonly edns: boolean;
  readonly variants: readonly Buffer[];
  readonly truncated: boolean;
  readonly rcode: number;
  /** Per variant, the offset of its SOA serial (written at serve time, §1.3), or null when there is no SOA. */
  readonly serialAt: readonly number[] | null;
  /**
   * Rotatable A/AAAA answer (one variant): `blocks` records of `block` bytes right after the question, each
   * owner a pointer to the question. Every response rotates all of them (§3.5) and shows the first `shown`:
   * the `maxAnswers` cap (§3.6) or what fits the size limit (§4.2, TC set in the variant's header only then),
   * so every record gets its turn first. 0 blocks: serve the precomputed variants instead.
   */
  readonly blocks: number;
  readonly block: number;
  readonly shown: number;
  /**
   * Up to PRECOMPUTED_ROTATIONS blocks: every rotation, built into one buffer of its own at the first hit (each
   * rotation `len` bytes at r × len), so a miss encodes once and a hit on a warm name is one copy. A buffer off
   * the shared pool: kept small Buffers pin whole 8 KB pool slabs full of served responses (measured 11.7 KB a
   * warm 10-record name when each rotation was its own pool Buffer). Null: not built yet, or too many blocks.
   */
  rotations: Buffer | null;
  /** Responses served from this slot (saturates): rotations are built on the second. */
  served: number;
  /**
   * Rotatable SRV answer: every record, and every glue record, kept once; each response starts at another
   * record and takes records while they fit with their glue (§3.5, §3.6, §4.2). Null: serve the variants.
   */
  readonly srv: SrvLayout | null;
  next: number;
}

/**
 * An SRV answer laid out for rotation at serve time. The records come from one encode of all of them in one
 * order (each record is self-contained: its owner points to the question, its target is written out); the
 * glue records are kept without their owner, which each response writes as a pointer to a target it sent.
 */
interface SrvLayout {
  /** The encoded answer holding every record (header and question are copied from it), and its question end. */
  readonly v: Buffer;
  readonly start: number;
  /** Records (n) and glue records (g). */
  readonly n: number;
  readonly g: number;
  /**
   * Every index in one array (one object a slot, not one per field; issue 11 #6): for record i, its start in `v`
   * at [i], its end at [n + i], its glue at [2n + i]; glue j without its owner (type, class, TTL, RDLENGTH, RDATA)
   * is `v[ints[3n + j] .. ints[3n + g + j])`, as the encode wrote it once.
   */
  readonly ints: Int32Array;
  /** Bytes of our OPT record at the end of `v` (0 without EDNS). */
  readonly tail: number;
  /** Records a response may show (§3.6) and the byte limit (§4.2). */
  readonly cap: number;
  readonly limit: number;
}

/** Per-processor scratch for SRV rotation (one response at a time): grown to the largest answer seen. */
class SrvScratch {
  picked = new Int32Array(64);
  pickedGlue = new Int32Array(64);
  targetAt = new Int32Array(64);
  stamp = new Int32Array(64);
  serve = 0;
  fit(n: number): void {
    if (n <= this.picked.length) return;
    const size = Math.max(n, 2 * this.picked.length);
    this.picked = new Int32Array(size);
    this.pickedGlue = new Int32Array(size);
    this.targetAt = new Int32Array(size);
    this.stamp = new Int32Array(size);
    this.serve = 0;
  }
}

interface NameEntry {
  /** The lowercase name's bytes: the key is only its hash, so a hit is confirmed against these. */
  readonly name: Buffer;
  slots: Slot[];
  bytes: number;
  /** The change keys every slot's answer was read from; ANY_CHANGE when some plan did not say. */
  readonly deps: ReadonlySet<string> | readonly string[];
}

const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
/** Wire sizes of an A / AAAA record whose owner is a compression pointer, and of our OPT record. */
const A_RECORD_BYTES = 16;
const AAAA_RECORD_BYTES = 28;
const OPT_RECORD_BYTES = 11;
/**
 * What the cache really holds per entry (issue 11 #6: the budget used to assume 512 B of overhead an entry where
 * one cost ~1.5 KB). Fitted to bench/miss-cost.ts (V8 heap plus Buffer memory after a full GC, Node 24 x64; A,
 * SRV, NXDOMAIN and three-slot entries within ±7 %): the NameEntry with its slots array, its name Buffer and the
 * LRU's node; per slot, the Slot object and its arrays; per Buffer, the object plus twice its length (fitted,
 * not derived: small Buffers live in shared 8 KB pool slabs, which a cached Buffer can keep alive); per
 * SRV layout, the object and its Int32Array (4 bytes an index); per dependency key, the key string, its place
 * in the entry's set and the index's Map entry and Set of names.
 */
const ENTRY_BYTES = 360;
const SLOT_BYTES = 300;
const BUFFER_BYTES = 160;
const SRV_LAYOUT_BYTES = 220;
const DEP_BYTES = 280;
/** A buffer of all rotations (its own ArrayBuffer), beyond its bytes. */
const ROTATIONS_BYTES = 300;
/** A/AAAA answers with at most this many records keep each rotation once built; larger ones rotate per hit. */
const PRECOMPUTED_ROTATIONS = 32;
/**
 * Slots kept per name: types × the four size classes (no EDNS, and EDNS at 512, 1232 or maxUdpPayload), room for
 * eight types. More is a client iterating over types, not a hot name.
 */
const MAX_SLOTS_PER_NAME = 32;
/** DNS flag day 2020 EDNS size: the size class between 512 and a larger maxUdpPayloadBytes. */
const EDNS_DEFAULT_BYTES = 1232;
/** Index key of names whose plan gave no dependencies: dropped on every change. */
const ANY_CHANGE = '*';
const ANY_DEPS: readonly string[] = [ANY_CHANGE];
/** The cache is under pressure past this fraction of its budget: NXDOMAINs asked once are not cached then. */
const PRESSURE_FRACTION = 0.75;
/** Doorkeeper slots (a power of two): names answered NXDOMAIN once, by hash. 256 KB. */
const DOORKEEPER_SLOTS = 1 << 16;

export class QueryProcessor {
  readonly #responder: Responder;
  readonly #maxUdp: number;
  readonly #order: Order;
  readonly #metrics: DnsMetrics;
  readonly #random: () => number;
  readonly #q = new Query();
  readonly #nameScratch = Buffer.allocUnsafe(256);
  readonly #scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  readonly #srvScratch = new SrvScratch();
  /** Name hashes of NXDOMAINs answered once but not cached (see #admit), one per slot. */
  readonly #doorkeeper = new Int32Array(DOORKEEPER_SLOTS);
  /** Past this many cached bytes, NXDOMAINs go through the doorkeeper. */
  readonly #pressureBytes: number;
  readonly #cache: LRUCache<number, NameEntry>;
  /** Change key → hashes of the cached names read from it (kept in step with the cache by `dispose`). */
  #byDep = new Map<string, Set<number>>();
  #generation = -1;
  readonly #onGeneration: ((generation: number) => void) | undefined;

  constructor(opts: ProcessorOptions) {
    this.#responder = opts.responder;
    this.#onGeneration = opts.onGeneration;
    this.#maxUdp = opts.maxUdpPayloadBytes;
    this.#order = opts.order;
    this.#metrics = opts.metrics ?? noopMetrics;
    this.#random = opts.random ?? Math.random;
    const cacheBytes = opts.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.#pressureBytes = Math.floor(cacheBytes * PRESSURE_FRACTION);
    this.#cache = new LRUCache<number, NameEntry>({
      // Bytes only, no `max`: with `max` lru-cache preallocates index arrays that clear() resets on every data
      // change (measured 380 µs vs 1.8 µs). The per-entry overhead in the size bounds the number of names anyway.
      maxSize: cacheBytes,
      sizeCalculation: (e) => e.bytes,
      // Evicted, replaced or deleted: unindex (replacement re-indexes the new entry right after set()).
      dispose: (e, hash) => this.#unindex(e, hash),
    });
  }

  /** Whether this name was turned away once already (then cache it now); else remember it and turn it away. */
  #admit(hash: number): boolean {
    const i = hash & (DOORKEEPER_SLOTS - 1);
    const tag = hash | 1; // never 0, the empty slot
    if (this.#doorkeeper[i] === tag) return true;
    this.#doorkeeper[i] = tag;
    return false;
  }

  /** Drop every cached answer (the processor is being replaced). */
  clearCache(): void {
    this.#byDep = new Map();
    this.#cache.clear();
  }

  /** Number of cached names (tests, metrics). */
  get cachedNames(): number {
    return this.#cache.size;
  }

  /** Bytes the cache accounts for its entries (encoded answers plus measured per-entry heap). */
  get cachedBytes(): number {
    return this.#cache.calculatedSize;
  }

  /**
   * Handle one message. `tcp` lifts the size limit to 65535 (§4.3). Returns the response, or null when the
   * message must be dropped silently (§5.5).
   */
  process(msg: Buffer, len: number, tcp: boolean): Buffer | null {
    const q = this.#q;
    try {
      return this.#process(msg, len, tcp, q);
    } catch (err) {
      this.#metrics.internalError(err);
      if (len < HEADER_BYTES || msg[2]! & 0x80) return null;
      q.id = (msg[0]! << 8) | msg[1]!;
      q.flags = (msg[2]! << 8) | msg[3]!;
      this.#metrics.response(q.qtype, RCODE.SERVFAIL, tcp, false);
      return encodeBare(this.#scratch, msg, q, RCODE.SERVFAIL, false, false, this.#maxUdp);
    }
  }

  #process(msg: Buffer, len: number, tcp: boolean, q: Query): Buffer | null {
    const status = parseQuery(msg, len, q, this.#nameScratch);
    if (status !== PARSE.OK) {
      if (status === PARSE.DROP) {
        this.#metrics.response(0, -1, tcp, false);
        return null;
      }
      const rcode = status === PARSE.NOTIMP ? RCODE.NOTIMP : RCODE.FORMERR;
      this.#metrics.response(0, rcode, tcp, false);
      return encodeBare(this.#scratch, msg, q, rcode, false, false, this.#maxUdp);
    }
    if (q.edns && q.ednsVersion > 0) {
      // §5.6, RFC 6891 §6.1.3: BADVERS (16) with our OPT at version 0, no answer, AA=0.
      this.#metrics.response(q.qtype, RCODE.BADVERS, tcp, false);
      return encodeBare(this.#scratch, msg, q, RCODE.BADVERS, true, true, this.#maxUdp);
    }
    if ((q.qclass !== CLASS.IN && q.qclass !== CLASS.ANY) || q.qtype === TYPE.AXFR || q.qtype === TYPE.IXFR) {
      this.#metrics.response(q.qtype, RCODE.REFUSED, tcp, false);
      return encodeBare(this.#scratch, msg, q, RCODE.REFUSED, true, q.edns, this.#maxUdp);
    }
    // Size classes, not the client's exact size: a client cycling through EDNS sizes must not force a miss per
    // query (a miss on a big SRV answer costs milliseconds). Answering smaller than a client allows is legal.
    const limit = tcp ? MAX_MESSAGE_BYTES : q.edns ? this.#udpClass(q.ednsUdpSize) : CLASSIC_UDP_BYTES;

    const gen = this.#responder.generation;
    if (gen !== this.#generation) this.#invalidate(gen);
    let entry = this.#cache.get(q.nameHash);
    if (entry && !sameName(entry.name, q)) entry = undefined; // a hash collision: a miss, replaced below
    const slot = entry ? findSlot(entry, q, limit) : undefined;
    if (slot && !q.qnameCompressed) {
      this.#metrics.cache(true);
      this.#metrics.response(q.qtype, slot.rcode, tcp, slot.truncated);
      return this.#serve(slot, q, msg);
    }
    this.#metrics.cache(false);
    const plan = this.#responder.plan(q.qname, q.qtype);
    const ctx = { query: q, msg, limit, ourUdpSize: this.#maxUdp, scratch: this.#scratch, serialAt: -1 };
    let serialAt: number[] | null = null;
    let variants: Buffer[] | null = null;
    let blocks = 0;
    let block = 0;
    let shown = 0;
    let srv: SrvLayout | null = null;
    const n = plan.answers.length;
    if (
      plan.order !== 'fixed' && n > 1 && plan.authority.length === 0 && !q.qnameCompressed &&
      plan.answers.every((r) => r.type === TYPE.SRV)
    ) {
      // One ordering of every record, rotated at serve time: the cap and the size limit are applied per
      // response, so every record gets its turn first over UDP too, with a miss costing one encode.
      const base = plan.order === 'random' ? shuffled(plan.answers, this.#random) : plan.answers;
      const buf = encode({ ...ctx, limit: MAX_MESSAGE_BYTES }, plan, base);
      srv = srvLayout(buf, q.questionEnd, base, limit, plan.maxAnswers > 0 ? Math.min(plan.maxAnswers, n) : n, q.edns);
      if (srv !== null) variants = [buf];
    }
    if (variants === null && plan.order !== 'fixed' && n > 1 && plan.additional.length === 0 && plan.authority.length === 0) {
      const t = plan.answers[0]!.type;
      if ((t === TYPE.A || t === TYPE.AAAA) && plan.answers.every((r) => r.type === t)) {
        // Every record is encoded (up to the 64 KB a message can hold), whatever this response's size limit:
        // rotating over all of them gives every record its turn first over UDP too (§3.5), and the cap and the
        // size limit are applied per response, by showing the first `shown` blocks of the rotation.
        const base = plan.order === 'random' ? shuffled(plan.answers, this.#random) : plan.answers;
        const buf = encode({ ...ctx, limit: MAX_MESSAGE_BYTES }, plan, base);
        const count = buf.readUInt16BE(6);
        const size = t === TYPE.A ? A_RECORD_BYTES : AAAA_RECORD_BYTES;
        const opt = q.edns ? OPT_RECORD_BYTES : 0;
        // Only when every answer really is one fixed-size block (owner compressed to the question).
        if (!q.qnameCompressed && buf.length === q.questionEnd + count * size + opt) {
          // §3.6: a cap that leaves a response that fits sets no TC; TC only when the limit cut records too.
          const wanted = plan.maxAnswers > 0 ? Math.min(plan.maxAnswers, n) : n;
          const fit = Math.max(0, Math.floor((limit - q.questionEnd - opt) / size));
          shown = Math.min(wanted, count, fit);
          if (shown < wanted) buf[2]! |= 0x02;
          else buf[2]! &= ~0x02;
          // One buffer, rotated per response (at most two range copies): a miss encodes once and stores one
          // buffer instead of one per rotation (issue 11 #6: a miss must cost little more than a hit).
          variants = [buf];
          blocks = count;
          block = size;
        }
      }
    }
    if (variants === null) {
      const encodeAll = (orders: Rec[][]) => {
        const serials: number[] = [];
        const out = orders.map((answers) => {
          const b = encode(ctx, plan, answers);
          serials.push(ctx.serialAt);
          return b;
        });
        serialAt = serials.every((at) => at < 0) ? null : serials;
        return out;
      };
      variants = encodeAll(orderings(plan, this.#random));
      // Truncated (§4.2): re-order so that the records that fit, response after response, cover every record.
      const kept = variants[0]!.readUInt16BE(6);
      if ((variants[0]![2]! & 0x02) !== 0 && plan.order !== 'fixed' && kept > 0 && kept < plan.answers.length) {
        variants = encodeAll(orderings(plan, this.#random, kept));
      }
    }
    const first = variants[0]!;
    const truncated = srv !== null ? pickSrv(srv, this.#srvScratch, 0) < srv.cap : (first[2]! & 0x02) !== 0;
    this.#metrics.response(q.qtype, plan.rcode, tcp, truncated);
    if (!entry && plan.rcode === RCODE.NXDOMAIN && this.#cache.calculatedSize > this.#pressureBytes && !this.#admit(q.nameHash)) {
      // A flood of distinct unknown names (random labels) would evict the answers clients ask again: once the
      // cache is under pressure, a name that does not exist is cached only when it is asked a second time.
      return first;
    }
    if (q.qnameCompressed) {
      // Not cached (its question bytes cannot be reused verbatim): any variant will do.
      return variants.length === 1 ? first : variants[Math.floor(this.#random() * variants.length)]!;
    }
    const newSlot: Slot = {
      qtype: q.qtype,
      limit,
      edns: q.edns,
      variants,
      truncated,
      rcode: plan.rcode,
      serialAt,
      blocks,
      block,
      shown,
      rotations: null,
      served: 0,
      srv,
      next: 0,
    };
    // The responder's own set when it gives one (iterated again on every change): no copy per miss.
    const deps = plan.deps === undefined ? ANY_DEPS : plan.deps instanceof Set || Array.isArray(plan.deps) ? (plan.deps as ReadonlySet<string> | readonly string[]) : [...plan.deps];
    let stored: NameEntry;
    if (entry) {
      // A new entry object: lru-cache re-measures an entry only when a different value is set.
      const slots = entry.slots.length >= MAX_SLOTS_PER_NAME ? entry.slots.slice(1) : entry.slots.slice();
      slots.push(newSlot);
      const union = new Set(entry.deps);
      for (const d of deps) union.add(d);
      const all = [...union];
      stored = { name: entry.name, slots, bytes: entryBytes(entry.name, slots, all), deps: all };
    } else {
      const name = Buffer.from(q.nameBytes.subarray(0, q.nameLen));
      const slots = [newSlot];
      stored = { name, slots, bytes: entryBytes(name, slots, deps), deps };
    }
    this.#cache.set(q.nameHash, stored);
    // Index only what the cache kept (an entry over the whole budget is not stored, and was disposed already).
    if (this.#cache.peek(q.nameHash) === stored) this.#index(stored, q.nameHash);
    return this.#serve(newSlot, q, msg);
  }

  /** The generation moved: drop the names read from what changed since the last one seen (§6.4). */
  #invalidate(gen: number): void {
    const changed = this.#generation < 0 ? null : this.#responder.changedSince(this.#generation);
    this.#generation = gen;
    this.#onGeneration?.(gen);
    if (changed === null) {
      this.clearCache();
      return;
    }
    this.#dropDep(ANY_CHANGE);
    for (const key of changed) this.#dropDep(key);
  }

  #dropDep(key: string): void {
    const hashes = this.#byDep.get(key);
    if (hashes === undefined) return;
    this.#byDep.delete(key);
    for (const h of hashes) this.#cache.delete(h); // dispose unindexes it from its other keys
  }

  #index(e: NameEntry, hash: number): void {
    for (const d of e.deps) {
      let set = this.#byDep.get(d);
      if (set === undefined) this.#byDep.set(d, (set = new Set()));
      set.add(hash);
    }
  }

  #unindex(e: NameEntry, hash: number): void {
    for (const d of e.deps) {
      const set = this.#byDep.get(d);
      if (set === undefined) continue;
      set.delete(hash);
      if (set.size === 0) this.#byDep.delete(d);
    }
  }

  /** A response from a cached slot: copied (or rotated), then this query's ID, RD, CD and spelling patched in. */
  #serve(slot: Slot, q: Query, msg: Buffer): Buffer {
    let out: Buffer;
    let v: Buffer;
    if (slot.srv !== null) {
      v = slot.variants[0]!;
      out = rotateSrv(slot.srv, this.#srvScratch, this.#pick(slot, slot.srv.n));
    } else if (slot.blocks > 0) {
      v = slot.variants[0]!;
      const r = this.#pick(slot, slot.blocks);
      let all = slot.rotations;
      if (all === null && slot.served > 0 && slot.blocks <= PRECOMPUTED_ROTATIONS) {
        slot.rotations = all = allRotations(v, q.questionEnd, slot.blocks, slot.block, slot.shown);
      }
      if (all === null) out = rotate(v, q.questionEnd, slot.blocks, slot.block, slot.shown, r);
      else {
        const len = all.length / slot.blocks;
        out = Buffer.allocUnsafe(len);
        all.copy(out, 0, r * len, (r + 1) * len);
      }
      if (slot.served === 0) slot.served = 1;
    } else {
      const n = slot.variants.length;
      const i = n === 1 ? 0 : this.#pick(slot, n);
      v = slot.variants[i]!;
      out = Buffer.allocUnsafe(v.length);
      v.copy(out);
      // The serial of now (§1.3): a negative answer stays cached across changes that did not touch its name.
      const at = slot.serialAt === null ? -1 : slot.serialAt[i]!;
      if (at >= 0) out.writeUInt32BE(this.#responder.serial >>> 0, at);
    }
    out[0] = q.id >> 8;
    out[1] = q.id & 0xff;
    // Echo this query's RD (0x0100) and CD (0x0010); the rest of the flags belong to the cached answer.
    out[2] = (out[2]! & 0xfe) | ((q.flags >> 8) & 0x01);
    out[3] = (out[3]! & 0xef) | (q.flags & 0x10);
    // Same name length (the cache key is the lowercase name): the client's spelling, type and class overwrite
    // ours in place.
    msg.copy(out, HEADER_BYTES, HEADER_BYTES, q.questionEnd);
    // RFC 3225 §3: DO copied from the query into our OPT, which is always the last record (its flags' high byte
    // sits 4 bytes before the end).
    if (q.edns) {
      const at = out.length - 4;
      out[at] = (out[at]! & 0x7f) | (q.dnssecOk ? 0x80 : 0);
    }
    return out;
  }

  /** §4.2 min(client, maxUdpPayload), rounded down to one of 512, 1232 (the DNS flag day size) or maxUdpPayload. */
  #udpClass(clientSize: number): number {
    const max = this.#maxUdp;
    if (clientSize >= max) return max;
    if (clientSize >= EDNS_DEFAULT_BYTES && max > EDNS_DEFAULT_BYTES) return EDNS_DEFAULT_BYTES;
    return CLASSIC_UDP_BYTES;
  }

  #pick(slot: Slot, n: number): number {
    if (this.#order === 'round-robin') {
      const i = slot.next % n;
      slot.next = (i + 1) % n;
      return i;
    }
    return this.#order === 'random' ? Math.floor(this.#random() * n) : 0;
  }
}

/** An entry's real cost in bytes (see ENTRY_BYTES): what the byte budget counts. */
function entryBytes(name: Buffer, slots: readonly Slot[], deps: ReadonlySet<string> | readonly string[]): number {
  let n = ENTRY_BYTES + name.length;
  for (const sl of slots) {
    n += SLOT_BYTES;
    for (const v of sl.variants) n += BUFFER_BYTES + 2 * v.length;
    if (sl.srv !== null) n += SRV_LAYOUT_BYTES + 4 * sl.srv.ints.length;
    // Counted as a warm name holds them (every rotation built, one buffer off the pool); cold names count high.
    if (sl.blocks > 0 && sl.blocks <= PRECOMPUTED_ROTATIONS) n += ROTATIONS_BYTES + sl.blocks * (sl.variants[0]!.length - (sl.blocks - sl.shown) * sl.block);
    if (sl.serialAt !== null) n += 16 + 8 * sl.serialAt.length;
  }
  for (const d of deps) n += DEP_BYTES + d.length;
  return n;
}

function sameName(name: Buffer, q: Query): boolean {
  const n = q.nameLen;
  if (name.length !== n) return false;
  const b = q.nameBytes;
  for (let i = 0; i < n; i++) if (name[i] !== b[i]) return false;
  return true;
}

function findSlot(entry: NameEntry, q: Query, limit: number): Slot | undefined {
  const slots = entry.slots;
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    if (s.qtype === q.qtype && s.limit === limit && s.edns === q.edns) return s;
  }
  return undefined;
}

/**
 * `v` with its `count` fixed-size answer records (starting at `start`, `size` bytes each) rotated to begin at
 * record `r`, keeping `shown` of them (ANCOUNT patched); header, question and trailing OPT unchanged.
 */
function rotate(v: Buffer, start: number, count: number, size: number, shown: number, r: number): Buffer {
  const out = Buffer.allocUnsafe(start + shown * size + (v.length - start - count * size));
  rotateInto(v, start, count, size, shown, r, out, 0);
  return out;
}

/** Every rotation of `v` (see rotate), rotation r at r × its length, in one buffer off the shared pool. */
function allRotations(v: Buffer, start: number, count: number, size: number, shown: number): Buffer {
  const len = start + shown * size + (v.length - start - count * size);
  const out = Buffer.allocUnsafeSlow(len * count);
  for (let r = 0; r < count; r++) rotateInto(v, start, count, size, shown, r, out, r * len);
  return out;
}

function rotateInto(v: Buffer, start: number, count: number, size: number, shown: number, r: number, out: Buffer, at: number): void {
  const tail = start + count * size;
  v.copy(out, at, 0, start);
  // The window [r, r + shown) wraps around the end at most once: two contiguous runs of records.
  const first = Math.min(shown, count - r);
  let o = at + start + v.copy(out, at + start, start + r * size, start + (r + first) * size);
  if (first < shown) o += v.copy(out, o, start, start + (shown - first) * size);
  v.copy(out, o, tail);
  out[at + 6] = shown >> 8;
  out[at + 7] = shown & 0xff;
}

/** Fixed SRV fields before the target: type, class, TTL, RDLENGTH (10) after the owner pointer (2), then 6. */
const SRV_TARGET_OFFSET = 2 + 10 + 6;
/** Compression pointers reach offsets below this. */
const POINTER_LIMIT = 0x4000;

/**
 * The rotation layout of `v`, one encode of all of `base` (SRV records), or null when this answer is not one
 * it handles: an owner that is not a pointer to the question, a target without exactly one glue record, a
 * response whose glue targets could sit past where pointers reach, or a single record that does not fit with
 * its glue (then the precomputed variants decide, answers alone if need be).
 */
function srvLayout(v: Buffer, start: number, base: readonly Rec[], limit: number, cap: number, edns: boolean): SrvLayout | null {
  const n = base.length;
  if (v.readUInt16BE(6) !== n || v.readUInt16BE(8) !== 0 || (v[2]! & 0x02) !== 0) return null;
  const g = v.readUInt16BE(10) - (edns ? 1 : 0);
  if (g <= 0 || g > n) return null;
  const ints = new Int32Array(3 * n + 2 * g);
  const END = n;
  const GLUE = 2 * n;
  const FROM = 3 * n;
  const TO = 3 * n + g;
  let o = start;
  for (let i = 0; i < n; i++) {
    const r = base[i]!;
    if (r.type !== TYPE.SRV || o + 12 > v.length || v[o] !== 0xc0 || v[o + 1] !== HEADER_BYTES || v.readUInt16BE(o + 2) !== TYPE.SRV) return null;
    ints[i] = o;
    o += 12 + v.readUInt16BE(o + 10);
    ints[END + i] = o;
  }
  // Glue as the encode wrote it: owner a pointer to the target in the first SRV record naming it, then A/AAAA.
  const byPointer = new Map<number, number>();
  for (let j = 0; j < g; j++) {
    if (o + 12 > v.length || (v[o]! & 0xc0) !== 0xc0) return null;
    const type = v.readUInt16BE(o + 2);
    if ((type !== TYPE.A && type !== TYPE.AAAA) || v.readUInt16BE(o + 4) !== CLASS.IN) return null;
    const ptr = ((v[o]! & 0x3f) << 8) | v[o + 1]!;
    if (byPointer.has(ptr)) return null;
    byPointer.set(ptr, j);
    ints[FROM + j] = o + 2;
    o += 12 + v.readUInt16BE(o + 10);
    ints[TO + j] = o;
  }
  // Each record's glue: the one pointing at its own target, or at an earlier record's with the same target.
  let byTarget: Map<string, number> | null = null;
  const used = new Uint8Array(g);
  for (let i = 0; i < n; i++) {
    const target = (base[i] as Extract<Rec, { type: 33 }>).srv.target;
    let j = byPointer.get(ints[i]! + SRV_TARGET_OFFSET);
    if (j !== undefined) {
      byTarget?.set(target, j);
    } else {
      if (byTarget === null) {
        // A shared target (one instance, several ports): index every target seen so far, once.
        byTarget = new Map();
        for (let k = 0; k < i; k++) byTarget.set((base[k] as Extract<Rec, { type: 33 }>).srv.target, ints[GLUE + k]!);
      }
      j = byTarget.get(target);
      if (j === undefined) return null;
    }
    ints[GLUE + i] = j;
    used[j] = 1;
  }
  for (let j = 0; j < g; j++) if (used[j] === 0) return null;
  let tail = 0;
  if (edns) {
    if (o !== v.length - OPT_RECORD_BYTES || v[o] !== 0 || v.readUInt16BE(o + 1) !== TYPE.OPT) return null;
    tail = OPT_RECORD_BYTES;
  } else if (o !== v.length) return null;
  // Rotated, a glue owner may point to a target past where pointers reach: only when the whole answer is that long.
  if (v.length > POINTER_LIMIT && limit > POINTER_LIMIT) return null;
  for (let i = 0; i < n; i++) {
    const j = ints[GLUE + i]!;
    if (start + ints[END + i]! - ints[i]! + 2 + ints[TO + j]! - ints[FROM + j]! + tail > limit) return null;
  }
  return { v, start, n, g, ints, tail, cap, limit };
}

/**
 * Pick the records of the response that starts at record `r`: in rotation order, up to `cap`, while each one
 * with its glue (once per target) still fits `limit` (§4.2: whole records dropped from the end). Fills the
 * scratch; returns how many were picked.
 */
function pickSrv(l: SrvLayout, sc: SrvScratch, r: number): number {
  const { n, g, ints } = l;
  sc.fit(Math.max(n, g));
  if (++sc.serve === 0x7fffffff) {
    sc.stamp.fill(0);
    sc.serve = 1;
  }
  const serve = sc.serve;
  let size = l.start + l.tail;
  let count = 0;
  for (let k = 0; k < n && count < l.cap; k++) {
    const i = (r + k) % n;
    const j = ints[2 * n + i]!;
    const fresh = sc.stamp[j] !== serve;
    const add = ints[n + i]! - ints[i]! + (fresh ? 2 + ints[3 * n + g + j]! - ints[3 * n + j]! : 0);
    if (size + add > l.limit) break;
    size += add;
    sc.picked[count] = i;
    sc.pickedGlue[count] = fresh ? j : -1;
    if (fresh) sc.stamp[j] = serve;
    count++;
  }
  return count;
}

/**
 * The response starting at record `r` (§3.5): the picked SRV records in rotation order, then one glue record
 * per target sent, its owner a pointer to that target, then OPT; ANCOUNT, ARCOUNT and TC set to match.
 */
function rotateSrv(l: SrvLayout, sc: SrvScratch, r: number): Buffer {
  const count = pickSrv(l, sc, r);
  const { v, n, g, ints } = l;
  const FROM = 3 * n;
  const TO = 3 * n + g;
  let answers = 0;
  let glueBytes = 0;
  let glueCount = 0;
  for (let k = 0; k < count; k++) {
    const i = sc.picked[k]!;
    answers += ints[n + i]! - ints[i]!;
    const j = sc.pickedGlue[k]!;
    if (j >= 0) {
      glueBytes += 2 + ints[TO + j]! - ints[FROM + j]!;
      glueCount++;
    }
  }
  const out = Buffer.allocUnsafe(l.start + answers + glueBytes + l.tail);
  v.copy(out, 0, 0, l.start);
  let o = l.start;
  for (let k = 0; k < count; k++) {
    const i = sc.picked[k]!;
    const j = sc.pickedGlue[k]!;
    if (j >= 0) sc.targetAt[j] = o + SRV_TARGET_OFFSET;
    o += v.copy(out, o, ints[i]!, ints[n + i]!);
  }
  for (let k = 0; k < count; k++) {
    const j = sc.pickedGlue[k]!;
    if (j < 0) continue;
    const p = sc.targetAt[j]!;
    out[o] = 0xc0 | (p >> 8);
    out[o + 1] = p & 0xff;
    o += 2 + v.copy(out, o + 2, ints[FROM + j]!, ints[TO + j]!);
  }
  if (l.tail > 0) v.copy(out, o, v.length - l.tail);
  out.writeUInt16BE(count, 6);
  out.writeUInt16BE(glueCount + (l.tail > 0 ? 1 : 0), 10);
  if (count < l.cap) out[2]! |= 0x02;
  else out[2]! &= ~0x02;
  return out;
}

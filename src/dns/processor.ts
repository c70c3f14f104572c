// dns/processor: packet in → packet out. Applies the wire-level rules (§4, §5.5, §5.6), serves encoded answers
// from the cache, and asks the Responder only on a miss. Never throws: an internal error becomes SERVFAIL.
//
// Cache (architecture rule 3): entries hold the fully encoded response for one (name, type, size class, EDNS);
// a hit copies it (rotating A/AAAA and SRV records at serve time, §3.5) and patches the ID, the echoed flags,
// the question bytes (the client's letter case), the DO bit and the SOA serial: one Buffer allocated per hit.
// Cached bytes live in the cache's own arena slabs, never Node's shared Buffer pool (issue 11 #4), and the
// byte budget counts what an entry really holds (fitted, see ENTRY_BYTES). Each name is indexed under the
// change keys its answers were read from (Plan.deps); when the generation moves, exactly the names under the
// keys that changed are dropped (Responder.changedSince), so no cached answer outlives the data behind it and
// what the change did not touch stays cached (§6.4).

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
  /** Bytes the cache may hold, answers and their bookkeeping as measured (default 32 MiB, see DEFAULT_CACHE_BYTES). */
  cacheBytes?: number;
  metrics?: DnsMetrics;
  random?: () => number;
  /** Called once per generation, at the first query answered from it (end-to-end propagation, issue 14 #4). */
  onGeneration?: ((generation: number) => void) | undefined;
}

interface Slot {
  /**
   * The key within a name: qtype, size class and EDNS (slotKey). Not the class (IN and ANY get the same records,
   * and the question is the client's own bytes) nor the DO bit (patched into our OPT at serve time): a client
   * cycling them must not force a miss per query (issue 11 #6).
   */
  readonly key: number;
  /**
   * The encoded answer (the first variant), in the cache's arena, its question name lowercase: it is also the
   * name the entry is confirmed against (sameName), so an entry keeps no name buffer of its own.
   */
  v: Buffer;
  /** Every variant when there are several (`v` is the first), else null. (`v` and `more` move when compacted.) */
  readonly more: Buffer[] | null;
  /** Offset of the SOA serial in `v` (written at serve time, §1.3), -1 without one; per variant with `more`. */
  readonly serialAt: number | readonly number[];
  readonly truncated: boolean;
  readonly rcode: number;
  /**
   * Rotatable A/AAAA answer: `blocks` records of `block` bytes right after the question, each owner a pointer to
   * the question. Every response rotates all of them at serve time (§3.5: two range copies) and shows the first
   * `shown`: the `maxAnswers` cap (§3.6) or what fits the size limit (§4.2, TC set in `v`'s header only then),
   * so every record gets its turn first. 0 blocks: serve the variants instead.
   */
  readonly blocks: number;
  readonly block: number;
  readonly shown: number;
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
  v: Buffer;
  readonly start: number;
  /** Records (n) and glue records (g). */
  readonly n: number;
  readonly g: number;
  /**
   * Every index in one array (one object a slot, not one per field; issue 11 #6): for record i, its start in `v`
   * at [i], its end at [n + i], its glue at [2n + i]; glue j without its owner (type, class, TTL, RDLENGTH, RDATA)
   * is `v[ints[3n + j] .. ints[3n + g + j])`, as the encode wrote it once.
   */
  ints: Int32Array;
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
  /** At least one; the first one's `v` holds the lowercase name (sameName). */
  readonly slots: readonly Slot[];
  readonly bytes: number;
  /**
   * The change keys every slot's answer was read from: one key (the usual case: no array) or several;
   * ANY_CHANGE when some plan did not say.
   */
  readonly deps: Deps;
}

/** An entry's change keys: one, or several distinct ones. */
type Deps = string | readonly string[];

/** Cached names indexed under one change key: one hash (the usual case), a few, or a set past INDEX_ARRAY_MAX. */
type Hashes = number | number[] | Set<number>;
/** Past this many names under one key the index holds a Set (removal stays O(1) when many names read one key). */
const INDEX_ARRAY_MAX = 16;

/**
 * Storage for the bytes the cache keeps (issue 11 #4): slabs only the cache allocates from, never Node's
 * shared 8 KB pool, where one long-lived cached answer kept a whole slab of dead responses alive (measured
 * 4.9–7.3 KB a cached name among hits, for 0.1–0.9 KB of answer). Bump allocation, 8-byte aligned (Int32Array
 * views); a slab is freed by the GC once none of its answers is referenced. An answer over ARENA_OWN_BYTES
 * gets a buffer of its own. Answers dropped by changes leave holes in slabs other answers still hold: the
 * processor compacts (moves every kept answer into fresh slabs) once the slabs hold COMPACT_FACTOR times
 * what the cache keeps (measured 3× after 40 rounds of 10 % of services changing, without compaction).
 */
class Arena {
  #slab: Buffer = Buffer.allocUnsafeSlow(0);
  #off = 0;
  /** Bytes handed out from slabs since the last reset (live or not): what the slabs hold at most. */
  allocated = 0;
  /** Copy `len` bytes of `src` into the arena (encode's `keep`: an arrow, so passing it allocates nothing). */
  readonly keep = (src: Buffer, len: number): Buffer => {
    const out = this.alloc(len);
    src.copy(out, 0, 0, len);
    return out;
  };

  alloc(len: number): Buffer {
    if (len > ARENA_OWN_BYTES) return Buffer.allocUnsafeSlow(len);
    if (this.#off + len > this.#slab.length) {
      this.#slab = Buffer.allocUnsafeSlow(ARENA_SLAB_BYTES);
      this.#off = 0;
    }
    const out = this.#slab.subarray(this.#off, this.#off + len);
    const size = arenaBytes(len);
    this.#off += size;
    this.allocated += size;
    return out;
  }

  ints(n: number): Int32Array {
    const b = this.alloc(4 * n);
    return new Int32Array(b.buffer, b.byteOffset, n);
  }

  /** Start over in a fresh slab: what was allocated before is freed once nothing references it. */
  reset(): void {
    this.#slab = Buffer.allocUnsafeSlow(0);
    this.#off = 0;
    this.allocated = 0;
  }

  /** `b` copied into the arena (after a reset: compaction); a buffer of its own stays where it is. */
  move(b: Buffer): Buffer {
    if (b.length > ARENA_OWN_BYTES) return b;
    const out = this.alloc(b.length);
    b.copy(out);
    return out;
  }

  moveInts(a: Int32Array): Int32Array {
    const out = this.ints(a.length);
    out.set(a);
    return out;
  }
}

/** Arena slab size: small, so a slab a few long-lived answers still hold wastes little. */
const ARENA_SLAB_BYTES = 16 * 1024;
const ARENA_OWN_BYTES = 4 * 1024;
/**
 * Compact once the slabs hold this many times the bytes cached answers keep there, plus COMPACT_FLOOR_BYTES (a
 * small cache is not worth it). Each compaction copies what is kept once; the next comes only after half as
 * much again was allocated, so the copying costs at most twice the bytes the misses allocated.
 */
const COMPACT_FACTOR = 1.5;
const COMPACT_FLOOR_BYTES = 512 * 1024;
/**
 * Names a miss moves while a compaction is under way: done in steps, because moving every name at once stalls
 * the thread (measured 35-45 ms for 18k names on a loaded 2-core machine); ~1-2 µs a name.
 */
const COMPACT_STEP = 16;

/**
 * ~32k single-slot names at the ~1 KB a cached A name really holds (CoreDNS's cache plugin keeps 9984 entries
 * per kind): twice the 15k distinct names of the realistic bench (10k services: A, AAAA, SRV), which then hits
 * 100 % at 0 changes/s, and within the 164 MB RSS a 10k × 10 server may use (issue 11 #4).
 */
const DEFAULT_CACHE_BYTES = 32 * 1024 * 1024;
/** Wire sizes of an A / AAAA record whose owner is a compression pointer, and of our OPT record. */
const A_RECORD_BYTES = 16;
const AAAA_RECORD_BYTES = 28;
const OPT_RECORD_BYTES = 11;
/**
 * What the cache really holds per entry (issue 11 #4, #6), fitted to the V8 heap plus Buffer memory after a full
 * GC (bench/miss-cost.ts and heap snapshots, Node 24 x64, no pointer compression: 8 bytes a field), names asked
 * twice among hits on another name as a server holds them; A, AAAA NODATA, NXDOMAIN, SRV and three-slot
 * entries within ±4 % of the heap measure (a heap snapshot puts single-slot entries ~10 % lower): the NameEntry,
 * its slots array and the LRU's node (its share of lru-cache's arrays and Map, the hash a heap number); per
 * slot, the Slot object (112 B); per Buffer, its view object (~104 B; the bytes sit in the arena, counted at
 * their length rounded to 8); per SRV layout, the object and its Int32Array view (its indexes counted as arena
 * bytes); per dependency key, the string and the index's entry for the name.
 */
const ENTRY_BYTES = 245;
const SLOT_BYTES = 215;
const BUFFER_BYTES = 100;
const SRV_LAYOUT_BYTES = 210;
const DEP_BYTES = 90;
/**
 * Slots kept per name: types × the four size classes (no EDNS, and EDNS at 512, 1232 or maxUdpPayload), room for
 * eight types. More is a client iterating over types, not a hot name.
 */
const MAX_SLOTS_PER_NAME = 32;
/** DNS flag day 2020 EDNS size: the size class between 512 and a larger maxUdpPayloadBytes. */
const EDNS_DEFAULT_BYTES = 1232;
/** Index key of names whose plan gave no dependencies: dropped on every change. */
const ANY_CHANGE = '*';
const NO_DEPS: readonly string[] = Object.freeze([]);
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
  readonly #arena = new Arena();
  /** Bytes of arena slabs the cached entries keep (arenaOf, summed; kept in step by `dispose`). */
  #arenaLive = 0;
  /** A compaction under way: the names (hashes) it still has to move from #movedTo on, or null. */
  #moving: number[] | null = null;
  #movedTo = 0;
  /** Name hashes of NXDOMAINs answered once but not cached (see #admit), one per slot. */
  readonly #doorkeeper = new Int32Array(DOORKEEPER_SLOTS);
  /** Past this many cached bytes, NXDOMAINs go through the doorkeeper. */
  readonly #pressureBytes: number;
  readonly #cache: LRUCache<number, NameEntry>;
  /** Change key → hashes of the cached names read from it (kept in step with the cache by `dispose`). */
  #byDep = new Map<string, Hashes>();
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
      dispose: (e, hash) => {
        this.#arenaLive -= arenaOf(e);
        this.#unindex(e.deps, hash);
      },
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
    this.#arenaLive = 0;
    this.#arena.reset();
    this.#moving = null;
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
    const key = slotKey(q.qtype, limit, q.edns);

    const gen = this.#responder.generation;
    if (gen !== this.#generation) this.#invalidate(gen);
    let entry = this.#cache.get(q.nameHash);
    // The key is only the name's hash: a collision (or a name we cannot compare, compressed) is a miss.
    if (entry && (q.qnameCompressed || !sameName(entry, msg, q))) entry = undefined;
    const slot = entry ? findSlot(entry, key) : undefined;
    if (slot) {
      this.#metrics.cache(true);
      this.#metrics.response(q.qtype, slot.rcode, tcp, slot.truncated);
      return this.#serve(slot, q, msg);
    }
    this.#metrics.cache(false);
    const plan = this.#responder.plan(q.qname, q.qtype);
    // Decided before encoding, so that what is kept is encoded straight into the arena and what is not never is.
    // A flood of distinct unknown names (random labels) would evict the answers clients ask again: once the
    // cache is under pressure, a name that does not exist is cached only when it is asked a second time.
    // A compressed question is not cached (its question bytes cannot be reused verbatim).
    const keep =
      !q.qnameCompressed &&
      (entry !== undefined || plan.rcode !== RCODE.NXDOMAIN || this.#cache.calculatedSize <= this.#pressureBytes || this.#admit(q.nameHash));
    const ctx = {
      query: q, msg, limit, ourUdpSize: this.#maxUdp, scratch: this.#scratch, serialAt: -1,
      keep: keep ? this.#arena.keep : undefined,
    };
    let serialAt: number | number[] = -1;
    let variants: Buffer[] | null = null;
    let blocks = 0;
    let block = 0;
    let shown = 0;
    let srv: SrvLayout | null = null;
    const n = plan.answers.length;
    if (
      keep && plan.order !== 'fixed' && n > 1 && plan.authority.length === 0 &&
      plan.answers.every((r) => r.type === TYPE.SRV)
    ) {
      // One ordering of every record, rotated at serve time: the cap and the size limit are applied per
      // response, so every record gets its turn first over UDP too, with a miss costing one encode.
      const base = plan.order === 'random' ? shuffled(plan.answers, this.#random) : plan.answers;
      const buf = encode({ ...ctx, limit: MAX_MESSAGE_BYTES }, plan, base);
      srv = srvLayout(buf, q.questionEnd, base, limit, plan.maxAnswers > 0 ? Math.min(plan.maxAnswers, n) : n, q.edns, keep ? this.#arena : null);
      if (srv !== null) variants = [buf];
    }
    if (keep && variants === null && plan.order !== 'fixed' && n > 1 && plan.additional.length === 0 && plan.authority.length === 0) {
      const t = plan.answers[0]!.type;
      if ((t === TYPE.A || t === TYPE.AAAA) && plan.answers.every((r) => r.type === t)) {
        // Every record is encoded (up to the 64 KB a message can hold), whatever this response's size limit:
        // rotating over all of them gives every record its turn first over UDP too (§3.5), and the cap and the
        // size limit are applied per response, by showing the first `shown` blocks of the rotation.
        const base = plan.order === 'random' ? shuffled(plan.answers, this.#random) : plan.answers;
        const buf = encode({ ...ctx, limit: MAX_MESSAGE_BYTES, keep: undefined }, plan, base);
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
          // One buffer, rotated per response: a miss encodes once and the cache keeps the answer once, not once
          // per rotation (issue 11 #4: a warm 10-record name kept 2.1 KB of rotations).
          variants = [doubled(this.#arena, buf, q.questionEnd, count, size, shown)];
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
        serialAt = serials.length === 1 ? serials[0]! : serials.every((at) => at < 0) ? -1 : serials;
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
    if (!keep) {
      // Not cached: any variant will do.
      return variants.length === 1 ? first : variants[Math.floor(this.#random() * variants.length)]!;
    }
    // The entry's name for sameName: the question, lowercase (every response overwrites it with the client's).
    lowerQuestion(first, q.questionEnd);
    const newSlot: Slot = {
      key,
      v: first,
      more: variants.length > 1 ? variants : null,
      serialAt,
      truncated,
      rcode: plan.rcode,
      blocks,
      block,
      shown,
      srv,
      next: 0,
    };
    const deps = depsOf(plan.deps);
    let stored: NameEntry;
    if (entry) {
      // A new entry object: lru-cache re-measures an entry only when a different value is set.
      const slots = entry.slots.length >= MAX_SLOTS_PER_NAME ? entry.slots.slice(1) : entry.slots.slice();
      slots.push(newSlot);
      const all = unionDeps(entry.deps, deps);
      stored = { slots, bytes: entryBytes(slots, all), deps: all };
    } else {
      const slots = [newSlot];
      stored = { slots, bytes: entryBytes(slots, deps), deps };
    }
    this.#cache.set(q.nameHash, stored);
    // Index only what the cache kept (an entry over the whole budget is not stored, and was disposed already).
    if (this.#cache.peek(q.nameHash) === stored) {
      this.#index(stored.deps, q.nameHash);
      this.#arenaLive += arenaOf(stored);
    }
    if (this.#moving !== null) this.#compactStep();
    else if (this.#arena.allocated > COMPACT_FACTOR * this.#arenaLive + COMPACT_FLOOR_BYTES) {
      // Fresh slabs from now on; the names cached so far move into them a few per miss.
      this.#arena.reset();
      this.#moving = [...this.#cache.keys()];
      this.#movedTo = 0;
      this.#compactStep();
    }
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

  /**
   * The next COMPACT_STEP names of a compaction moved into the fresh slabs, leaving the old slabs (and the holes
   * dropped answers left in them) to the GC once the last name has moved. On a miss only.
   */
  #compactStep(): void {
    const keys = this.#moving!;
    const arena = this.#arena;
    const end = Math.min(keys.length, this.#movedTo + COMPACT_STEP);
    for (let k = this.#movedTo; k < end; k++) {
      // Gone since (dropped, evicted): nothing to move. Replaced: its slots move, new ones again (harmless).
      const e = this.#cache.peek(keys[k]!);
      if (e === undefined) continue;
      for (const sl of e.slots) {
        const more = sl.more;
        if (more === null) sl.v = arena.move(sl.v);
        else {
          for (let i = 0; i < more.length; i++) more[i] = arena.move(more[i]!);
          sl.v = more[0]!;
        }
        if (sl.srv !== null) {
          sl.srv.v = sl.v;
          sl.srv.ints = arena.moveInts(sl.srv.ints);
        }
      }
    }
    this.#movedTo = end;
    if (end === keys.length) this.#moving = null;
  }

  #dropDep(key: string): void {
    const hashes = this.#byDep.get(key);
    if (hashes === undefined) return;
    // Out of the index first: each delete's dispose unindexes the name from its other keys, not from this one.
    this.#byDep.delete(key);
    if (typeof hashes === 'number') this.#cache.delete(hashes);
    else for (const h of hashes) this.#cache.delete(h);
  }

  #index(deps: Deps, hash: number): void {
    if (typeof deps === 'string') this.#indexKey(deps, hash);
    else for (const d of deps) this.#indexKey(d, hash);
  }

  #indexKey(key: string, hash: number): void {
    const cur = this.#byDep.get(key);
    if (cur === undefined) this.#byDep.set(key, hash);
    else if (typeof cur === 'number') this.#byDep.set(key, [cur, hash]);
    else if (Array.isArray(cur)) {
      if (cur.length < INDEX_ARRAY_MAX) cur.push(hash);
      else this.#byDep.set(key, new Set(cur).add(hash));
    } else cur.add(hash);
  }

  #unindex(deps: Deps, hash: number): void {
    if (typeof deps === 'string') this.#unindexKey(deps, hash);
    else for (const d of deps) this.#unindexKey(d, hash);
  }

  #unindexKey(key: string, hash: number): void {
    const cur = this.#byDep.get(key);
    if (cur === undefined) return;
    if (typeof cur === 'number') {
      if (cur === hash) this.#byDep.delete(key);
    } else if (Array.isArray(cur)) {
      const i = cur.indexOf(hash);
      if (i < 0) return;
      cur[i] = cur[cur.length - 1]!;
      cur.pop();
      if (cur.length === 1) this.#byDep.set(key, cur[0]!);
    } else {
      cur.delete(hash);
      if (cur.size === 0) this.#byDep.delete(key);
    }
  }

  /** A response from a cached slot: copied (or rotated), then this query's ID, RD, CD and spelling patched in. */
  #serve(slot: Slot, q: Query, msg: Buffer): Buffer {
    let out: Buffer;
    if (slot.srv !== null) {
      out = rotateSrv(slot.srv, this.#srvScratch, this.#pick(slot, slot.srv.n));
    } else if (slot.blocks > 0) {
      out = rotate(slot.v, q.questionEnd, slot.blocks, slot.block, slot.shown, this.#pick(slot, slot.blocks));
    } else {
      const more = slot.more;
      const i = more === null ? 0 : this.#pick(slot, more.length);
      const v = more === null ? slot.v : more[i]!;
      out = Buffer.allocUnsafe(v.length);
      v.copy(out);
      // The serial of now (§1.3): a negative answer stays cached across changes that did not touch its name.
      const at = typeof slot.serialAt === 'number' ? slot.serialAt : slot.serialAt[i]!;
      if (at >= 0) out.writeUInt32BE(this.#responder.serial >>> 0, at);
    }
    out[0] = q.id >> 8;
    out[1] = q.id & 0xff;
    // Echo this query's RD (0x0100) and CD (0x0010); the rest of the flags belong to the cached answer.
    out[2] = (out[2]! & 0xfe) | ((q.flags >> 8) & 0x01);
    out[3] = (out[3]! & 0xef) | (q.flags & 0x10);
    // Same name length (the cache key is the lowercase name): the client's spelling, type and class overwrite
    // ours in place.
    copyRange(msg, HEADER_BYTES, q.questionEnd, out, HEADER_BYTES);
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

/** A slot's key: qtype, the size limit's class (512, 1232, another EDNS size, TCP) and EDNS, in one small integer. */
function slotKey(qtype: number, limit: number, edns: boolean): number {
  const cls = limit === MAX_MESSAGE_BYTES ? 3 : limit === CLASSIC_UDP_BYTES ? 0 : limit === EDNS_DEFAULT_BYTES ? 1 : 2;
  return (qtype << 3) | (cls << 1) | (edns ? 1 : 0);
}

/** A plan's dependencies as an entry keeps them: one key as the string itself; ANY_CHANGE when it did not say. */
function depsOf(deps: Iterable<string> | undefined): Deps {
  if (deps === undefined) return ANY_CHANGE;
  const keys = deps instanceof Set ? (deps as Set<string>) : new Set(deps);
  if (keys.size === 0) return NO_DEPS;
  if (keys.size === 1) for (const k of keys) return k;
  return [...keys];
}

function unionDeps(a: Deps, b: Deps): Deps {
  if (a === b) return a;
  const all = new Set(typeof a === 'string' ? [a] : a);
  if (typeof b === 'string') all.add(b);
  else for (const k of b) all.add(k);
  if (all.size === (typeof a === 'string' ? 1 : a.length)) return a; // nothing new: keep the old keys
  return [...all];
}

/** An entry's real cost in bytes (see ENTRY_BYTES): what the byte budget counts. */
function entryBytes(slots: readonly Slot[], deps: Deps): number {
  let n = ENTRY_BYTES;
  for (const sl of slots) {
    n += SLOT_BYTES + BUFFER_BYTES + arenaBytes(sl.v.length);
    if (sl.more !== null) {
      n += 16 + 4 * sl.more.length;
      for (let i = 1; i < sl.more.length; i++) n += BUFFER_BYTES + arenaBytes(sl.more[i]!.length);
    }
    if (typeof sl.serialAt !== 'number') n += 16 + 8 * sl.serialAt.length;
    if (sl.srv !== null) n += SRV_LAYOUT_BYTES + arenaBytes(4 * sl.srv.ints.length);
  }
  if (typeof deps === 'string') n += DEP_BYTES + deps.length;
  else for (const d of deps) n += DEP_BYTES + d.length;
  return n;
}

/** Bytes `len` takes in the arena (8-byte aligned), or on its own past ARENA_OWN_BYTES. */
function arenaBytes(len: number): number {
  return (len + 7) & ~7;
}

/** Bytes an entry's buffers take in arena slabs (not those of their own): what compaction keeps. */
function arenaOf(e: NameEntry): number {
  let n = 0;
  for (const sl of e.slots) {
    if (sl.more === null) n += inArena(sl.v.length);
    else for (const b of sl.more) n += inArena(b.length);
    if (sl.srv !== null) n += inArena(4 * sl.srv.ints.length);
  }
  return n;
}

function inArena(len: number): number {
  return len > ARENA_OWN_BYTES ? 0 : arenaBytes(len);
}

/** Lowercase the question name of `v` in place (`end`: where the question ends; label lengths are < 64). */
function lowerQuestion(v: Buffer, end: number): void {
  for (let i = HEADER_BYTES; i < end - 4; i++) {
    const b = v[i]!;
    if (b >= 0x41 && b <= 0x5a) v[i] = b | 0x20;
  }
}

/**
 * Whether the query asks the entry's name: its question name, lowercase, byte for byte (a wire name is
 * self-delimiting, so equal bytes up to the query's root label mean the same name).
 */
function sameName(entry: NameEntry, msg: Buffer, q: Query): boolean {
  const v = entry.slots[0]!.v;
  const end = q.questionEnd - 4;
  if (v.length < end) return false;
  for (let i = HEADER_BYTES; i < end; i++) {
    const b = msg[i]!;
    const c = v[i]!;
    // Most clients ask in lowercase: one comparison a byte, the case fold only for an uppercase letter.
    if (c !== b && (b < 0x41 || b > 0x5a || c !== (b | 0x20))) return false;
  }
  return true;
}

function findSlot(entry: NameEntry, key: number): Slot | undefined {
  const slots = entry.slots;
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    if (s.key === key) return s;
  }
  return undefined;
}

/** Bytes copied with a loop below this length (a Buffer copy call costs ~50 ns, more than a short loop). */
const SHORT_COPY = 64;

function copyRange(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const len = to - from;
  if (len >= SHORT_COPY) return src.copy(dst, at, from, to);
  for (let i = 0; i < len; i++) dst[at + i] = src[from + i]!;
  return len;
}

/**
 * The A/AAAA answer `buf` (its `count` records of `size` bytes from `start`) as the cache keeps it, in the
 * arena: the records followed by the first `shown - 1` of them again, so that any rotation's `shown` records
 * are one contiguous run (a hit is one range copy, as a precomputed rotation was, for `shown - 1` records of
 * memory instead of `count` whole responses).
 */
function doubled(arena: Arena, buf: Buffer, start: number, count: number, size: number, shown: number): Buffer {
  const records = start + count * size;
  const again = Math.max(0, shown - 1) * size;
  const out = arena.alloc(buf.length + again);
  buf.copy(out, 0, 0, records);
  buf.copy(out, records, start, start + again);
  buf.copy(out, records + again, records);
  out[6] = shown >> 8; // ANCOUNT as every response has it
  out[7] = shown & 0xff;
  return out;
}

/**
 * The response from a doubled `v` (see doubled) whose records start at record `r`: `shown` of them (ANCOUNT
 * patched); header and trailing OPT copied. The question is left for the caller, which writes the client's
 * own (#serve).
 */
function rotate(v: Buffer, start: number, count: number, size: number, shown: number, r: number): Buffer {
  const tail = shown > 0 ? start + (count + shown - 1) * size : start + count * size;
  const len = v.length;
  const out = Buffer.allocUnsafe(start + shown * size + (len - tail));
  // Loops, not copy calls, for the few bytes around the records (header past the ID; OPT): cheaper per hit.
  for (let i = 2; i < HEADER_BYTES; i++) out[i] = v[i]!;
  let o = start + v.copy(out, start, start + r * size, start + (r + shown) * size);
  for (let i = tail; i < len; i++) out[o++] = v[i]!;
  return out;
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
function srvLayout(v: Buffer, start: number, base: readonly Rec[], limit: number, cap: number, edns: boolean, arena: Arena | null): SrvLayout | null {
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
  // Kept: the indexes move into the arena too (no ArrayBuffer of their own per entry).
  const kept = arena === null ? ints : arena.ints(ints.length);
  if (kept !== ints) kept.set(ints);
  return { v, start, n, g, ints: kept, tail, cap, limit };
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

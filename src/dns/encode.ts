// dns/encode: turns a Plan into response bytes — name compression, the OPT record, UDP truncation (§4.2) — and
// precomputes the answer orderings (§3.5) so a cached entry can serve shuffled answers without re-encoding.
//
// Hand-written rather than dns-packet: dns-packet writes names uncompressed (fewer records fit in 512 bytes,
// so clients fall back to TCP sooner) and cannot point answer owners at the question, which is what makes the
// cached bytes echo the client's letter case for free (§1.4). Tests decode our output with dns-packet.

import { ipv6Groups } from '../model/names.ts';
import type { Plan, Rec } from './plan.ts';
import { HEADER_BYTES, TYPE, type Query } from './wire.ts';

export const MAX_MESSAGE_BYTES = 65_535;
/** Scratch size: room to build an over-long answer before trimming it to MAX_MESSAGE_BYTES. */
export const SCRATCH_BYTES = 4 * MAX_MESSAGE_BYTES;
/** Smallest possible resource record: a 2-byte compressed owner and 10 bytes of type/class/TTL/length. */
const MIN_RECORD_BYTES = 12;
/** Distinct shuffles kept per cached answer when order is random (§3.5). */
export const RANDOM_VARIANTS = 16;
/** Rotations kept per cached answer when order is round-robin. */
export const MAX_ROTATIONS = 32;
/** Answers with more records than this keep only LARGE_ANSWER_VARIANTS encodings (each costs a full encode). */
const LARGE_ANSWER = 64;
const LARGE_ANSWER_VARIANTS = 4;

/** Header flag bits. */
const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const CD = 0x0010;

/** What the response echoes from the query: ID, opcode, RD, CD (the reserved Z bit is not echoed, §5.6). */
export function echoFlags(queryFlags: number): number {
  return QR | (queryFlags & (0x7800 | RD | CD));
}

/** A growable-by-limit writer with a name-compression dictionary. One per encode call (miss path). */
class Writer {
  readonly buf: Buffer;
  off = 0;
  /** Offset of the last SOA serial written, or -1. */
  serialAt = -1;
  readonly #names = new Map<string, number>();
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  u8(v: number) {
    this.buf[this.off++] = v;
  }
  u16(v: number) {
    this.buf.writeUInt16BE(v, this.off);
    this.off += 2;
  }
  u32(v: number) {
    this.buf.writeUInt32BE(v >>> 0, this.off);
    this.off += 4;
  }
  /** Make every suffix of `name` (already written at `at`) available for compression. */
  registerName(name: string, at: number) {
    if (name === '') return;
    let pos = at;
    let rest = name;
    for (;;) {
      if (pos >= 0x4000) return;
      // A suffix already known has all of its own suffixes known too (every name is registered suffix by suffix).
      if (this.#names.has(rest)) return;
      this.#names.set(rest, pos);
      const dot = rest.indexOf('.');
      if (dot < 0) return;
      pos += dot + 1;
      rest = rest.slice(dot + 1);
    }
  }
  name(name: string) {
    let rest = name;
    while (rest !== '') {
      const ptr = this.#names.get(rest);
      if (ptr !== undefined) {
        this.u16(0xc000 | ptr);
        return;
      }
      if (this.off < 0x4000) this.#names.set(rest, this.off);
      const dot = rest.indexOf('.');
      const end = dot < 0 ? rest.length : dot;
      this.#label(rest, 0, end);
      rest = dot < 0 ? '' : rest.slice(dot + 1);
    }
    this.u8(0);
  }
  rec(r: Rec) {
    this.name(r.name);
    this.u16(r.type);
    this.u16(1); // class IN
    this.u32(r.ttl);
    const lenAt = this.off;
    this.off += 2;
    switch (r.type) {
      case 1:
        writeIpv4(this.buf, this.off, r.address);
        this.off += 4;
        break;
      case 28:
        writeIpv6(this.buf, this.off, r.address);
        this.off += 16;
        break;
      case 2:
      case 12: // PTR (§3.8): a name, compressible like NS (RFC 3597 §4 allows it for RFC 1035 types)
        this.name(r.target);
        break;
      case 33:
        this.u16(r.srv.priority);
        this.u16(r.srv.weight);
        this.u16(r.srv.port);
      {
        // RFC 2782: the target must not be compressed. (RFC 3597 §4: no compression in new RDATA.) Later names
        // may still point into it: the glue owner for this target becomes a 2-byte pointer (§4.2 packing).
        const at = this.off;
        this.nameUncompressed(r.srv.target);
        this.registerName(r.srv.target, at);
        break;
      }
      case 6:
        this.name(r.soa.mname);
        this.name(r.soa.rname);
        this.serialAt = this.off;
        this.u32(r.soa.serial);
        this.u32(r.soa.refresh);
        this.u32(r.soa.retry);
        this.u32(r.soa.expire);
        this.u32(r.soa.minimum);
        break;
    }
    this.buf.writeUInt16BE(this.off - lenAt - 2, lenAt);
  }
  nameUncompressed(name: string) {
    let from = 0;
    while (from < name.length) {
      const dot = name.indexOf('.', from);
      const end = dot < 0 ? name.length : dot;
      this.#label(name, from, end);
      from = end + 1;
    }
    this.u8(0);
  }
  /** Length byte, then the label `name[from..end)` byte by byte (names are ASCII): no substring per label. */
  #label(name: string, from: number, end: number) {
    const buf = this.buf;
    let o = this.off;
    buf[o++] = end - from;
    for (let i = from; i < end; i++) buf[o++] = name.charCodeAt(i);
    this.off = o;
  }
}

const DOT = 46;
const COLON = 58;

/** Dotted-quad text into 4 bytes at `off`, without splitting it into strings (miss path, issue 11 #6). */
export function writeIpv4(buf: Buffer, off: number, text: string): void {
  let v = 0;
  let o = off;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === DOT) {
      buf[o++] = v;
      v = 0;
    } else v = v * 10 + (c - 48);
  }
  buf[o] = v;
}

function hexDigit(c: number): number {
  return c <= 57 ? c - 48 : (c | 0x20) - 87;
}

/**
 * IPv6 text (canonical, as the backends hand it in: hex groups, at most one `::`, maybe a dotted-quad tail) into
 * 16 bytes at `off`, without allocating. Anything else goes through ipv6Groups.
 */
export function writeIpv6(buf: Buffer, off: number, text: string): void {
  const n = text.length;
  if (text.indexOf('.') >= 0 || text.indexOf('%') >= 0) {
    const groups = ipv6Groups(text);
    for (let i = 0; i < 8; i++) buf.writeUInt16BE(groups[i]!, off + 2 * i);
    return;
  }
  // Groups before `::` go from the front, groups after it are written from the back; zeros in between.
  buf.fill(0, off, off + 16);
  const dbl = text.indexOf('::');
  const headEnd = dbl < 0 ? n : dbl;
  let g = 0;
  let v = 0;
  let digits = 0;
  for (let i = 0; i < headEnd; i++) {
    const c = text.charCodeAt(i);
    if (c === COLON) {
      buf.writeUInt16BE(v, off + 2 * g++);
      v = 0;
      digits = 0;
    } else {
      v = (v << 4) | hexDigit(c);
      digits++;
    }
  }
  if (digits > 0 || (dbl < 0 && n > 0)) buf.writeUInt16BE(v, off + 2 * g);
  if (dbl < 0) return;
  g = 7;
  v = 0;
  let shift = 0;
  for (let i = n - 1; i >= dbl + 2; i--) {
    const c = text.charCodeAt(i);
    if (c === COLON) {
      buf.writeUInt16BE(v, off + 2 * g--);
      v = 0;
      shift = 0;
    } else {
      v |= hexDigit(c) << shift;
      shift += 4;
    }
  }
  if (shift > 0) buf.writeUInt16BE(v, off + 2 * g);
}

/** Exact wire size of a record as written by Writer without compression: an upper bound used for budgeting. */
function recSizeBound(r: Rec): number {
  const n = r.name.length + 2;
  switch (r.type) {
    case 1:
      return n + 10 + 4;
    case 28:
      return n + 10 + 16;
    case 2:
    case 12:
      return n + 10 + r.target.length + 2;
    case 33:
      return n + 10 + 6 + r.srv.target.length + 2;
    case 6:
      return n + 10 + r.soa.mname.length + r.soa.rname.length + 4 + 20;
  }
}

function targetOf(r: Rec): string | null {
  return r.type === 33 ? r.srv.target : r.type === 2 ? r.target : null;
}

export interface EncodeContext {
  readonly query: Query;
  /** The query message: its question bytes are copied verbatim (case echo, §1.4). */
  readonly msg: Uint8Array;
  /** Byte limit for this response: 512, the EDNS size, or 65535 over TCP (§4.2, §4.3). */
  readonly limit: number;
  /** Our advertised EDNS UDP size (§5.6). */
  readonly ourUdpSize: number;
  /** Shared scratch of MAX_MESSAGE_BYTES. */
  readonly scratch: Buffer;
  /** Set by encode(): offset of the SOA serial in the returned response, or -1 (patched at serve time, §1.3). */
  serialAt: number;
  /**
   * Where the response's bytes are copied from the scratch: the answer cache's own storage for an answer it
   * keeps (issue 11 #4: never the shared pool, where a kept answer pins a slab of dead responses). Without it,
   * a Buffer from the shared pool (a one-shot response).
   */
  readonly keep?: ((scratch: Buffer, len: number) => Buffer) | undefined;
}

/**
 * Encode one response with `answers` already ordered. When it does not fit `limit`, answers are dropped from
 * the end until the survivors plus all of their glue fit, and TC=1 is set (§4.2): every SRV target that is
 * sent has its address in Additional, and no glue is sent for a target that is not. The cut is exact, with
 * compression: as many answers as really fit with their glue (one more would not).
 */
export function encode(ctx: EncodeContext, plan: Plan, answers: readonly Rec[]): Buffer {
  const n = answers.length;
  // Upper bounds (uncompressed sizes) keep every trial inside the scratch buffer, however large the answer.
  const glueBound = new Map<string, number>();
  for (const g of plan.additional) glueBound.set(g.name, (glueBound.get(g.name) ?? 0) + recSizeBound(g));
  const room = ctx.scratch.length - fixedSize(ctx, plan);
  let kMax = 0;
  let used = 0;
  const counted = new Set<string>();
  for (; kMax < n; kMax++) {
    const r = answers[kMax]!;
    let cost = recSizeBound(r);
    const t = targetOf(r);
    if (t !== null && !counted.has(t)) cost += glueBound.get(t) ?? 0;
    if (used + cost > room) break;
    used += cost;
    if (t !== null) counted.add(t);
  }
  // Every record takes at least 12 bytes (a compressed owner and the fixed fields): skip a full write that
  // cannot fit (1500 SRV records into 1232 bytes).
  if (kMax === n && HEADER_BYTES + n * MIN_RECORD_BYTES <= ctx.limit) {
    const len = writeInto(ctx, plan, answers, n, false, true);
    if (len <= ctx.limit) return copyOut(ctx, len);
  }
  // Too big. One measuring pass gives each answer's exact end offset (answers are written first, with the
  // same compression state as the final write): no more than `hi` answers can fit, even without glue. A
  // lower bound `lo` that surely fits comes from budgeting glue and authority at their uncompressed sizes.
  // The largest k in [lo, hi] whose real encoding (compression included) fits is then found by bisection:
  // a few writes of at most `limit` bytes each, not a search over full encodes (a 1500-record miss: ~ms).
  const tail = authorityBound(plan) + (ctx.query.edns ? 11 : 0);
  const ends = answerEnds(ctx, answers, kMax, ctx.limit);
  let hi = 0;
  while (hi < ends.length && ends[hi]! <= ctx.limit) hi++;
  let lo = 0;
  let glueSum = 0;
  const seen = new Set<string>();
  for (let i = 0; i < hi; i++) {
    const t = targetOf(answers[i]!);
    let add = 0;
    if (t !== null && !seen.has(t)) add = glueBound.get(t) ?? 0;
    if (ends[i]! + tail + glueSum + add > ctx.limit) break;
    glueSum += add;
    if (t !== null) seen.add(t);
    lo = i + 1;
  }
  const withGlue = largestFitting(ctx, plan, answers, lo, hi, true);
  if (withGlue > 0) return copyOut(ctx, writeInto(ctx, plan, answers, withGlue, withGlue < n, true));
  // Not even one answer fits together with its glue: send answers alone (still TC=1 when any is dropped).
  const bare = largestFitting(ctx, plan, answers, 0, hi, false);
  return copyOut(ctx, writeInto(ctx, plan, answers, bare, n > 0, false));
}

/**
 * The largest k in [lo, hi] whose response fits `ctx.limit` (k = lo is taken to fit; 0 when nothing does).
 * The size grows with k (another answer, maybe its glue; compression only ever shortens later names).
 */
function largestFitting(ctx: EncodeContext, plan: Plan, answers: readonly Rec[], lo: number, hi: number, glue: boolean): number {
  let best = lo > 0 && writeInto(ctx, plan, answers, lo, true, glue) <= ctx.limit ? lo : 0;
  let a = best + 1;
  let b = hi;
  while (a <= b) {
    const mid = (a + b) >>> 1;
    if (writeInto(ctx, plan, answers, mid, true, glue) <= ctx.limit) {
      best = mid;
      a = mid + 1;
    } else {
      b = mid - 1;
    }
  }
  return best;
}

/** Offsets just after each of the first `k` answers, as `write` would place them; stops past `stopAfter`. */
function answerEnds(ctx: EncodeContext, answers: readonly Rec[], k: number, stopAfter: number): number[] {
  const q = ctx.query;
  const w = new Writer(ctx.scratch);
  if (!q.qnameCompressed) w.off = q.questionEnd;
  else {
    w.off = HEADER_BYTES;
    w.nameUncompressed(q.qname);
    w.off += 4;
  }
  w.registerName(q.qname, HEADER_BYTES);
  const ends: number[] = [];
  for (let i = 0; i < k; i++) {
    w.rec(answers[i]!);
    ends.push(w.off);
    if (w.off > stopAfter) break;
  }
  return ends;
}

function authorityBound(plan: Plan): number {
  let n = 0;
  for (const r of plan.authority) n += recSizeBound(r);
  return n;
}

function fixedSize(ctx: EncodeContext, plan: Plan): number {
  let n = HEADER_BYTES + (ctx.query.questionEnd - HEADER_BYTES) + (ctx.query.edns ? 11 : 0);
  for (const r of plan.authority) n += recSizeBound(r);
  return n;
}

/** Write the response with the first `k` answers into the scratch buffer; returns its length. */
function writeInto(
  ctx: EncodeContext,
  plan: Plan,
  answers: readonly Rec[],
  k: number,
  truncated: boolean,
  glue: boolean,
): number {
  const q = ctx.query;
  const w = new Writer(ctx.scratch);
  w.u16(q.id);
  let flags = echoFlags(q.flags) | (plan.rcode & 0xf);
  if (plan.aa) flags |= AA;
  if (truncated) flags |= TC;
  w.u16(flags);
  w.u16(1);
  w.u16(k);
  w.u16(plan.authority.length);
  const arCountAt = w.off;
  w.u16(0);
  // Question: the client's bytes when they are self-contained, so answers pointing at offset 12 echo its case.
  if (!q.qnameCompressed) {
    ctx.scratch.set(ctx.msg.subarray(HEADER_BYTES, q.questionEnd), HEADER_BYTES);
    w.off = q.questionEnd;
  } else {
    w.nameUncompressed(q.qname);
    w.u16(q.qtype);
    w.u16(q.qclass);
  }
  w.registerName(q.qname, HEADER_BYTES);
  let targets: Set<string> | null = null;
  for (let i = 0; i < k; i++) {
    const r = answers[i]!;
    w.rec(r);
    const t = targetOf(r);
    if (t !== null) (targets ??= new Set()).add(t);
  }
  for (const r of plan.authority) w.rec(r);
  let ar = 0;
  if (glue && targets !== null) {
    for (const g of plan.additional) {
      if (!targets.has(g.name)) continue;
      w.rec(g);
      ar++;
    }
  }
  if (q.edns) {
    const rcodeHigh = plan.rcode >> 4;
    w.u8(0); // root
    w.u16(TYPE.OPT);
    w.u16(ctx.ourUdpSize);
    w.u8(rcodeHigh);
    w.u8(0); // version 0
    w.u16(q.dnssecOk ? 0x8000 : 0); // DO copied; other flags never echoed (§5.6)
    w.u16(0); // no options
    ar++;
  }
  ctx.scratch.writeUInt16BE(ar, arCountAt);
  ctx.serialAt = w.serialAt;
  return w.off;
}

function copyOut(ctx: EncodeContext, len: number): Buffer {
  return ctx.keep !== undefined ? ctx.keep(ctx.scratch, len) : Buffer.from(ctx.scratch.subarray(0, len));
}

/**
 * The answer orderings to precompute for a plan (§3.5): one for `fixed`, rotations for `round-robin`, and
 * shuffles for `random` (every permutation when there are few answers, so the choice stays uniform).
 *
 * `window` > 0 says that only that many answers are shown per response (`maxAnswers`, or what fits the UDP
 * size): the orderings are then rotations of one order whose windows together cover every record, so every
 * record is served (§3.6). A fixed set of independent shuffles would leave some records out of every response
 * for as long as the cache entry lives: servers that a client such as HAProxy never learns of.
 */
export function orderings(plan: Plan, random: () => number, window = 0): Rec[][] {
  const a = plan.answers;
  const n = a.length;
  const max = plan.maxAnswers;
  const capped = (list: Rec[]) => capRecords(list, max);
  if (n <= 1 || plan.order === 'fixed') return [capped([...a])];
  const shown = Math.min(window > 0 ? window : n, max > 0 && a.every(isCapped) ? max : n);
  const large = n > LARGE_ANSWER;
  if (shown < n && n > 4) {
    const base = plan.order === 'random' ? shuffled(a, random) : [...a];
    const usual = plan.order === 'random' ? (large ? LARGE_ANSWER_VARIANTS : RANDOM_VARIANTS) : large ? LARGE_ANSWER_VARIANTS : MAX_ROTATIONS;
    // Evenly spaced starts, at most `shown` apart, so consecutive windows overlap or touch.
    const count = Math.min(n, Math.max(usual, Math.ceil(n / shown)));
    const out: Rec[][] = [];
    for (let v = 0; v < count; v++) {
      const r = Math.floor((v * n) / count);
      out.push(capped([...base.slice(r), ...base.slice(0, r)]));
    }
    return out;
  }
  if (plan.order === 'round-robin') {
    const count = Math.min(n, large ? LARGE_ANSWER_VARIANTS : MAX_ROTATIONS);
    const out: Rec[][] = [];
    for (let r = 0; r < count; r++) out.push(capped([...a.slice(r), ...a.slice(0, r)]));
    return out;
  }
  if (n <= 4) return permutations([...a]).map(capped);
  const out: Rec[][] = [];
  // Each variant is a full encode; past a few dozen SRV records clients pick by weight themselves (RFC 2782).
  const count = large ? LARGE_ANSWER_VARIANTS : RANDOM_VARIANTS;
  for (let v = 0; v < count; v++) out.push(capped(shuffled(a, random)));
  return out;
}

/** A Fisher-Yates shuffled copy. */
export function shuffled<T>(xs: readonly T[], random: () => number): T[] {
  const p = [...xs];
  for (let i = p.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** The record types `maxAnswers` caps (§3.6): A, AAAA and SRV. */
function isCapped(r: Rec): boolean {
  return r.type === 1 || r.type === 28 || r.type === 33;
}

/** §3.6: keep at most `max` A/AAAA/SRV records (0 = all), in order; other types are untouched. */
function capRecords(list: Rec[], max: number): Rec[] {
  if (max <= 0) return list;
  let seen = 0;
  return list.filter((r) => !isCapped(r) || ++seen <= max);
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i++) {
    const rest = [...xs.slice(0, i), ...xs.slice(i + 1)];
    for (const p of permutations(rest)) out.push([xs[i]!, ...p]);
  }
  return out;
}

/** Encode an error reply with no records (FORMERR, NOTIMP, REFUSED, SERVFAIL, BADVERS), optionally with the question and OPT. */
export function encodeBare(
  scratch: Buffer,
  msg: Uint8Array,
  q: Query,
  rcode: number,
  withQuestion: boolean,
  withOpt: boolean,
  ourUdpSize: number,
): Buffer {
  scratch.writeUInt16BE(q.id, 0);
  scratch.writeUInt16BE(echoFlags(q.flags) | (rcode & 0xf), 2);
  scratch.writeUInt16BE(withQuestion ? 1 : 0, 4);
  scratch.writeUInt32BE(0, 6);
  scratch.writeUInt16BE(withOpt ? 1 : 0, 10);
  let off = HEADER_BYTES;
  if (withQuestion) {
    if (!q.qnameCompressed) {
      scratch.set(msg.subarray(HEADER_BYTES, q.questionEnd), HEADER_BYTES);
      off = q.questionEnd;
    } else {
      const w = new Writer(scratch);
      w.off = off;
      w.nameUncompressed(q.qname);
      w.u16(q.qtype);
      w.u16(q.qclass);
      off = w.off;
    }
  }
  if (withOpt) {
    scratch[off++] = 0;
    scratch.writeUInt16BE(TYPE.OPT, off);
    scratch.writeUInt16BE(ourUdpSize, off + 2);
    scratch[off + 4] = rcode >> 4;
    scratch[off + 5] = 0;
    scratch.writeUInt16BE(q.dnssecOk ? 0x8000 : 0, off + 6);
    scratch.writeUInt16BE(0, off + 8);
    off += 10;
  }
  return Buffer.from(scratch.subarray(0, off));
}

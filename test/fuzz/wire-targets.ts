// test/fuzz/wire-targets: the fuzz targets of the wire parser (parseQuery against the independent reader in
// harness.ts) and of the encoder (random plans, decoded with dns-packet). Used by wire.test.ts and by the
// regression replay.

import * as dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { encode, SCRATCH_BYTES } from '../../src/dns/encode.ts';
import type { Plan, Rec } from '../../src/dns/plan.ts';
import { PARSE, parseQuery, Query } from '../../src/dns/wire.ts';
import { canonicalIPv6 } from '../../src/model/names.ts';
import { asProcessed, encodeQuery, structuredQuery, type Input } from './arbitraries.ts';
import { viewQuery } from './harness.ts';

const q = new Query();
const scratch = Buffer.alloc(256);
const STATUS = ['OK', 'DROP', 'FORMERR', 'NOTIMP'];

interface Parsed {
  status: number;
  fields: unknown[];
}

function parse(buf: Buffer, len: number): Parsed {
  const status = parseQuery(buf, len, q, scratch);
  const fields =
    status === PARSE.OK
      ? [q.id, q.flags, q.qname, q.nameHash, q.qtype, q.qclass, q.qnameEnd, q.questionEnd, q.qnameCompressed, q.edns, q.ednsUdpSize, q.ednsVersion, q.dnssecOk]
      : status === PARSE.DROP
        ? []
        : [q.id, q.flags];
  return { status, fields };
}

/** ASCII-only lowercase, as DNS matching is (RFC 4343): bytes ≥ 0x80 are left alone. */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(s, 'latin1')) h = Math.imul(h ^ c, 0x01000193);
  return h >>> 0;
}

export function parserTarget(input: Input): string[] {
  const out: string[] = [];
  const { buf, len } = asProcessed(input);
  const msg = buf.subarray(0, len);
  let exact: Parsed;
  let padded: Parsed;
  try {
    exact = parse(Buffer.from(msg), msg.length);
    padded = parse(Buffer.from(buf), len);
  } catch (err) {
    return [`parseQuery threw: ${(err as Error).stack}`];
  }
  // Bytes after `len` (a reused receive buffer) change nothing.
  if (JSON.stringify(exact) !== JSON.stringify(padded)) out.push(`bytes after len changed the result: ${JSON.stringify(exact)} vs ${JSON.stringify(padded)}`);
  const v = viewQuery(msg);
  const want = !v.header || v.qr ? PARSE.DROP : v.opcode !== 0 ? PARSE.NOTIMP : v.wellFormed ? PARSE.OK : PARSE.FORMERR;
  if (exact.status !== want && !(v.ambiguous && (exact.status === PARSE.OK || exact.status === PARSE.FORMERR))) {
    out.push(`status ${STATUS[exact.status]}, the reader says ${STATUS[want]} (§5.5)`);
  }
  if (exact.status !== PARSE.OK) {
    if (exact.status !== PARSE.DROP && exact.fields[0] !== v.id) out.push('ID not kept for the error response (§5.5)');
    return out;
  }
  const [id, , qname, hash, qtype, qclass, , questionEnd, , edns, size, version, dnssecOk] = exact.fields as [number, number, string, number, number, number, number, number, boolean, boolean, number, number, boolean];
  const question = v.question!;
  if (id !== v.id) out.push(`id ${id} vs ${v.id}`);
  if (qtype !== question.type || qclass !== question.class) out.push(`type/class ${qtype}/${qclass} vs ${question.type}/${question.class}`);
  // A literal dot inside a label becomes a 0 byte: such a name matches nothing we serve.
  const expectName = v.dotInLabel ? null : asciiLower(question.name);
  if (expectName !== null && qname !== expectName) out.push(`name ${JSON.stringify(qname)} vs ${JSON.stringify(expectName)} (§1.4: case-insensitive)`);
  if (hash !== fnv(qname)) out.push('name hash is not FNV-1a of the name');
  if (!v.compressed && msg.readUInt16BE(questionEnd - 4) !== qtype) out.push('questionEnd does not follow the question');
  if (edns !== (v.opt !== null)) out.push(`edns ${edns}, the reader found ${v.opt ? 'an' : 'no'} OPT`);
  if (v.opt && (size !== v.opt.size || version !== v.opt.version || dnssecOk !== v.opt.dnssecOk)) out.push(`OPT ${size}/${version}/${dnssecOk} vs ${JSON.stringify(v.opt)}`);
  return out;
}

// ---- encoder ----

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const ipv6 = fc.ipV6().map(canonicalIPv6);
const targets = fc.constantFrom('0a-00-00-01.addr.sd.internal', '0a-00-00-02.addr.sd.internal', 'fd00--1.addr.sd.internal', 'ns.sd.internal', 'host-with-a-rather-long-name-to-eat-space.addr.staging.sd.internal');
const ttl = fc.oneof(fc.constantFrom(0, 5, 30, 2_147_483_647), fc.nat());

function recArb(owner: string): fc.Arbitrary<Rec> {
  return fc.oneof(
    fc.record({ name: fc.constant(owner), type: fc.constant(1 as const), ttl, address: ipv4 }),
    fc.record({ name: fc.constant(owner), type: fc.constant(28 as const), ttl, address: ipv6 }),
    fc.record({
      name: fc.constant(owner),
      type: fc.constant(33 as const),
      ttl,
      srv: fc.record({ priority: fc.nat(65535), weight: fc.nat(65535), port: fc.nat(65535), target: targets }),
    }),
    fc.record({ name: fc.constant(owner), type: fc.constant(2 as const), ttl, target: targets }),
  );
}

const soa: fc.Arbitrary<Rec> = fc.record({
  name: fc.constant('sd.internal'),
  type: fc.constant(6 as const),
  ttl,
  soa: fc.record({ mname: fc.constant('ns.sd.internal'), rname: fc.constant('hostmaster.sd.internal'), serial: fc.nat(), refresh: fc.nat(), retry: fc.nat(), expire: fc.nat(), minimum: fc.nat() }),
});

const glue: fc.Arbitrary<Rec> = fc.oneof(
  fc.record({ name: targets, type: fc.constant(1 as const), ttl, address: ipv4 }),
  fc.record({ name: targets, type: fc.constant(28 as const), ttl, address: ipv6 }),
);

export interface EncodeCase {
  readonly msg: Buffer;
  readonly plan: Plan;
  readonly limit: number;
}

export const encodeCase: fc.Arbitrary<EncodeCase> = fc
  .record({
    query: structuredQuery,
    limit: fc.oneof(fc.constantFrom(512, 1232, 4096, 65535), fc.integer({ min: 512, max: 65535 })),
    rcode: fc.constantFrom(0, 0, 0, 3),
    aa: fc.boolean(),
    count: fc.oneof({ weight: 3, arbitrary: fc.nat(6) }, { weight: 3, arbitrary: fc.integer({ min: 20, max: 300 }) }, { weight: 1, arbitrary: fc.integer({ min: 1000, max: 1600 }) }),
    seed: fc.nat(),
    authority: fc.boolean(),
    glue: fc.array(glue, { maxLength: 8 }),
  })
  .chain((c) => {
    // A parseable one-question query with EDNS version 0 (what reaches the encoder).
    const query = { ...c.query, flags: c.query.flags & 0x07ff, class: 1, extra: [], ...(c.query.edns ? { edns: { ...c.query.edns, version: 0 } } : {}) };
    const msg = encodeQuery(query);
    const qn = parseQuery(msg, msg.length, new Query(), Buffer.alloc(256)) === PARSE.OK ? asciiLower(viewQuery(msg).question?.name ?? '') : 'sd.internal';
    return fc.array(recArb(qn), { minLength: c.count, maxLength: c.count }).map((answers) => ({
      msg,
      limit: c.limit,
      plan: { rcode: c.rcode, aa: c.aa, answers, authority: c.authority ? [fc.sample(soa, { numRuns: 1, seed: c.seed })[0]!] : [], additional: c.glue, order: 'fixed' as const, maxAnswers: 0 },
    }));
  });

const encScratch = Buffer.alloc(SCRATCH_BYTES);

function encodeOnce(c: EncodeCase, answers: readonly Rec[]): { buf: Buffer; query: Query } | string {
  const query = new Query();
  if (parseQuery(c.msg, c.msg.length, query, Buffer.alloc(256)) !== PARSE.OK) return 'skip';
  const ctx = { query, msg: c.msg, limit: c.limit, ourUdpSize: 1232, scratch: encScratch, serialAt: -1 };
  return { buf: encode(ctx, c.plan, answers), query };
}

const dataOf = (r: Rec): string =>
  r.type === 1 ? r.address : r.type === 28 ? canonicalIPv6(r.address) : r.type === 33 ? `${r.srv.priority} ${r.srv.weight} ${r.srv.port} ${r.srv.target}` : r.type === 2 ? r.target : 'soa';

function decodedData(a: dnsPacket.Answer): string {
  const d = (a as { data: unknown }).data;
  if (a.type === 'A') return String(d);
  if (a.type === 'AAAA') return canonicalIPv6(String(d));
  if (a.type === 'SRV') {
    const s = d as { priority: number; weight: number; port: number; target: string };
    return `${s.priority} ${s.weight} ${s.port} ${s.target.toLowerCase()}`;
  }
  if (a.type === 'NS') return String(d).toLowerCase();
  return 'soa';
}

export function encoderTarget(c: EncodeCase): string[] {
  let r;
  try {
    r = encodeOnce(c, c.plan.answers);
  } catch (err) {
    return [`encode threw: ${(err as Error).stack}`];
  }
  if (typeof r === 'string') return [];
  const { buf, query } = r;
  const out: string[] = [];
  if (buf.length > c.limit) out.push(`${buf.length} bytes over the limit ${c.limit} (§4.2)`);
  let d: dnsPacket.Packet & { flag_tc?: boolean; flag_aa?: boolean };
  try {
    d = dnsPacket.decode(buf) as typeof d;
  } catch (err) {
    return [...out, `dns-packet cannot decode: ${(err as Error).message}`];
  }
  if (dnsPacket.decode.bytes !== buf.length) out.push('bytes after the records');
  if (buf.readUInt16BE(0) !== query.id) out.push('ID not echoed');
  if ((buf[3]! & 0xf) !== c.plan.rcode) out.push('rcode');
  if (((buf[2]! & 0x04) !== 0) !== c.plan.aa) out.push('AA');
  const tc = (buf[2]! & 0x02) !== 0;
  const answers = d.answers ?? [];
  const k = answers.length;
  const n = c.plan.answers.length;
  if (k > n) out.push('more answers than planned');
  // The first k planned answers, in order (records are cut from the end, §4.2).
  for (let i = 0; i < Math.min(k, n); i++) {
    const want = c.plan.answers[i]!;
    if (decodedData(answers[i]!) !== dataOf(want) || (answers[i] as { ttl?: number }).ttl !== want.ttl) {
      out.push(`answer ${i} is ${decodedData(answers[i]!)}, planned ${dataOf(want)}`);
      break;
    }
  }
  if (k < n && !tc) out.push(`${n - k} answers cut without TC=1 (§4.2)`);
  if (k === n && tc) out.push('TC=1 with every answer sent');
  const auth = (d.authorities ?? []).length;
  if (auth !== c.plan.authority.length) out.push(`authority ${auth} of ${c.plan.authority.length}`);
  // Glue: only for targets of the answers sent; all of it unless not even one answer fit with its glue.
  const sent = new Set(c.plan.answers.slice(0, k).flatMap((a) => (a.type === 33 ? [a.srv.target] : a.type === 2 ? [a.target] : [])));
  const wantGlue = c.plan.additional.filter((g) => sent.has(g.name)).map((g) => `${g.name} ${dataOf(g)}`);
  const gotGlue = (d.additionals ?? []).filter((a) => a.type !== 'OPT').map((a) => `${a.name.toLowerCase()} ${decodedData(a)}`);
  if (JSON.stringify(gotGlue) !== JSON.stringify(wantGlue) && !(tc && gotGlue.length === 0)) out.push(`glue ${JSON.stringify(gotGlue)}, expected ${JSON.stringify(wantGlue)} (§4.2)`);
  if (k === 0 && gotGlue.length > 0) out.push('empty Answer with glue (§4.2)');
  const opt = (d.additionals ?? []).filter((a) => a.type === 'OPT').length;
  if (opt !== (query.edns ? 1 : 0)) out.push(`${opt} OPT records, query ${query.edns ? 'had' : 'had no'} EDNS (§5.6)`);
  // Maximal: a plan of the k sent answers plus the next one must not fit whole.
  if (out.length === 0 && tc && k < n) {
    const more = encodeOnce({ ...c, plan: { ...c.plan, answers: c.plan.answers.slice(0, k + 1) } }, c.plan.answers.slice(0, k + 1));
    if (typeof more !== 'string' && (more.buf[2]! & 0x02) === 0) out.push(`cut at ${k} answers, but ${k + 1} fit in ${more.buf.length} bytes (§4.2)`);
  }
  return out;
}

/** An encoder case as saved in a regression file (JSON text) and back. */
export function saveEncodeCase(c: EncodeCase): string {
  return JSON.stringify({ msg: c.msg.toString('hex'), limit: c.limit, plan: c.plan });
}

export function loadEncodeCase(text: string): EncodeCase {
  const j = JSON.parse(text) as { msg: string; limit: number; plan: Plan };
  return { msg: Buffer.from(j.msg, 'hex'), limit: j.limit, plan: j.plan };
}

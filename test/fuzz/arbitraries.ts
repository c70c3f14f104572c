// test/fuzz/arbitraries: fast-check generators of DNS queries — raw bytes, mutations of the seed corpus, and
// structured queries (real and made-up names, 0x20 case, any type and class, EDNS with odd sizes, versions,
// flags and options, extra records) — written by hand so they can also build what no encoder would.

import fc from 'fast-check';
import { loadCorpus, nameParts } from './harness.ts';

/** One input to process(): the bytes, the transport, and trailing garbage after `len` (a reused receive buffer). */
export interface Input {
  readonly msg: Buffer;
  readonly tcp: boolean;
  /** Bytes after the message in the buffer handed to process(); the parser must stop at `len`. */
  readonly tail: Buffer;
}

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

const transport = fc.boolean();
const tail = fc.oneof({ weight: 4, arbitrary: fc.constant(Buffer.alloc(0)) }, { weight: 1, arbitrary: bytes(64) });

/** Any bytes, half of them behind a plausible header (QR=0, opcode 0, QDCOUNT 1) so they get past the first checks. */
export const rawInput: fc.Arbitrary<Input> = fc
  .record({
    body: bytes(700),
    header: fc.oneof(
      fc.constant(null),
      fc.record({ id: fc.integer({ min: 0, max: 0xffff }), flags: fc.integer({ min: 0, max: 0x7fff }).map((f) => f & 0x87ff), an: fc.nat(3), ns: fc.nat(3), ar: fc.nat(3) }),
    ),
    tcp: transport,
    tail,
  })
  .map(({ body, header, tcp, tail }) => {
    if (header === null) return { msg: body, tcp, tail };
    const h = Buffer.alloc(12);
    h.writeUInt16BE(header.id, 0);
    h.writeUInt16BE(header.flags, 2);
    h.writeUInt16BE(1, 4);
    h.writeUInt16BE(header.an, 6);
    h.writeUInt16BE(header.ns, 8);
    h.writeUInt16BE(header.ar, 10);
    return { msg: Buffer.concat([h, body]), tcp, tail };
  });

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'insert'; at: number; data: Buffer }
  | { kind: 'delete'; at: number; n: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'count'; at: number; which: number; value: number }
  | { kind: 'splice'; at: number; other: number; from: number; n: number }
  | { kind: 'pointer'; at: number; target: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(0, 1, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff), fc.nat(255)) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), data: bytes(16) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('count' as const), at: fc.constant(0), which: fc.nat(3), value: fc.oneof(fc.nat(3), fc.constant(0xffff)) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), other: fc.nat(), from: fc.nat(), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('pointer' as const), at: fc.nat(), target: fc.nat(0x3fff) }),
);

function mutate(seed: Buffer, ms: readonly Mutation[], corpus: readonly Buffer[]): Buffer {
  let b = Buffer.from(seed);
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    switch (m.kind) {
      case 'flip':
        if (at < b.length) b[at] = b[at]! ^ (1 << m.bit);
        break;
      case 'set':
        if (at < b.length) b[at] = m.value;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.data, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'count':
        if (b.length >= 12) b.writeUInt16BE(m.value, 4 + 2 * m.which);
        break;
      case 'splice': {
        const o = corpus[m.other % corpus.length]!;
        const from = m.from % (o.length + 1);
        b = Buffer.concat([b.subarray(0, at), o.subarray(from, from + m.n), b.subarray(at)]);
        break;
      }
      case 'pointer':
        if (at + 1 < b.length) b.writeUInt16BE(0xc000 | (m.target % Math.max(1, b.length + 4)), at);
        break;
    }
  }
  return b;
}

/** Mutations of the real dig/kdig queries in test/fuzz/corpus. */
export function mutatedInput(): fc.Arbitrary<Input> {
  const corpus = loadCorpus();
  return fc
    .record({
      seed: fc.nat(corpus.length - 1),
      // Mostly one or two edits: a query that still parses reaches the answer code; more edits mostly make FORMERR.
      ms: fc.oneof({ weight: 3, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 2 }) }, { weight: 1, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 8 }) }),
      tcp: transport,
      tail,
    })
    .map(({ seed, ms, tcp, tail }) => ({ msg: mutate(corpus[seed]!, ms, corpus), tcp, tail }));
}

/** The corpus itself, unchanged, over both transports. */
export function corpusInputs(): Input[] {
  return loadCorpus().flatMap((msg) => [false, true].map((tcp) => ({ msg, tcp, tail: Buffer.alloc(0) })));
}

const { hits, full, labels } = nameParts();

/** 0x20: each letter's case flipped at random (§1.4). */
const caseMask = fc.array(fc.boolean(), { maxLength: 300 });
function applyCase(name: string, mask: readonly boolean[]): string {
  let out = '';
  for (let i = 0; i < name.length; i++) out += mask[i % Math.max(1, mask.length)] ? name[i]!.toUpperCase() : name[i]!;
  return out;
}

const label = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...labels) },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9_-]{1,20}$/) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 63 }).map((a) => Buffer.from(a).toString('latin1')) },
);

const name: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...hits) },
  { weight: 4, arbitrary: fc.constantFrom(...full) },
  { weight: 2, arbitrary: fc.tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom(...full)).map(([ls, base]) => [...ls, base].filter((x) => x !== '').join('.')) },
  { weight: 1, arbitrary: fc.array(label, { maxLength: 8 }).map((ls) => ls.join('.')) },
);

const qtype = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(1, 28, 33, 255) },
  { weight: 4, arbitrary: fc.constantFrom(2, 6, 16, 12, 15, 5, 252, 251, 41, 0, 65535, 64, 65) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
);
const qclass = fc.oneof(
  { weight: 16, arbitrary: fc.constant(1) },
  { weight: 2, arbitrary: fc.constantFrom(255, 3, 4, 254, 0) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
);

const ednsOption = fc.record({ code: fc.oneof(fc.constantFrom(3, 8, 10, 12, 15), fc.integer({ min: 0, max: 0xffff })), data: bytes(24) });
const edns = fc.option(
  fc.record({
    size: fc.oneof(fc.constantFrom(0, 1, 511, 512, 513, 1231, 1232, 1233, 1400, 4096, 65535), fc.integer({ min: 0, max: 0xffff })),
    extRcode: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(255) }),
    version: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 255 }) }),
    flags: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0, 0x8000) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
    options: fc.array(ednsOption, { maxLength: 3 }),
  }),
  { freq: 2 },
);

/** A record for the answer/authority/additional sections of a query (legal, unusual). */
const extraRecord = fc.record({ name: fc.constantFrom('', 'x', 'web.service.sd.internal'), type: fc.constantFrom(1, 16, 28, 99), data: bytes(20) });

export interface StructuredQuery {
  readonly id: number;
  readonly flags: number;
  readonly name: string;
  readonly type: number;
  readonly class: number;
  readonly edns: { size: number; extRcode: number; version: number; flags: number; options: { code: number; data: Buffer }[] } | null;
  readonly extra: { name: string; type: number; data: Buffer }[];
  readonly extraIn: 'an' | 'ns' | 'ar';
  /** The OPT record comes before the extra additional records instead of after. */
  readonly optFirst: boolean;
}

/** Flags of a query: QR=0; opcode QUERY mostly; RD, CD, AD, AA, TC, Z in any combination. */
const flags = fc.oneof(
  { weight: 20, arbitrary: fc.integer({ min: 0, max: 0x07ff }).map((f) => f & 0x07ff) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x7fff }) },
);

export const structuredQuery: fc.Arbitrary<StructuredQuery> = fc
  .record({
    id: fc.integer({ min: 0, max: 0xffff }),
    flags,
    name,
    mask: caseMask,
    type: qtype,
    class: qclass,
    edns,
    extra: fc.array(extraRecord, { maxLength: 2 }).map((xs) => (xs.length > 0 && xs[0]!.type === 99 ? xs : [])) as fc.Arbitrary<{ name: string; type: number; data: Buffer }[]>,
    extraIn: fc.constantFrom('an' as const, 'ns' as const, 'ar' as const),
    optFirst: fc.boolean(),
  })
  .map(({ mask, name, ...rest }) => ({ ...rest, name: applyCase(name, mask) }));

function writeName(name: string): Buffer {
  if (name === '') return Buffer.from([0]);
  const parts: Buffer[] = [];
  for (const l of name.split('.')) {
    const b = Buffer.from(l, 'latin1').subarray(0, 63);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function rr(name: string, type: number, cls: number, ttl: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(cls, 2);
  fixed.writeUInt32BE(ttl >>> 0, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([writeName(name), fixed, data]);
}

export function encodeQuery(q: StructuredQuery): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(q.id, 0);
  h.writeUInt16BE(q.flags, 2);
  h.writeUInt16BE(1, 4);
  const qfix = Buffer.alloc(4);
  qfix.writeUInt16BE(q.type, 0);
  qfix.writeUInt16BE(q.class, 2);
  const extra = q.extra.map((e) => rr(e.name, e.type, 1, 60, e.data));
  let opt: Buffer | null = null;
  if (q.edns) {
    const o = q.edns;
    const data = Buffer.concat(
      o.options.map((x) => {
        const head = Buffer.alloc(4);
        head.writeUInt16BE(x.code, 0);
        head.writeUInt16BE(x.data.length, 2);
        return Buffer.concat([head, x.data]);
      }),
    );
    opt = rr('', 41, o.size, (o.extRcode << 24) | (o.version << 16) | o.flags, data);
  }
  const an = q.extraIn === 'an' ? extra : [];
  const ns = q.extraIn === 'ns' ? extra : [];
  const arExtra = q.extraIn === 'ar' ? extra : [];
  const ar = opt === null ? arExtra : q.optFirst ? [opt, ...arExtra] : [...arExtra, opt];
  h.writeUInt16BE(an.length, 6);
  h.writeUInt16BE(ns.length, 8);
  h.writeUInt16BE(ar.length, 10);
  return Buffer.concat([h, writeName(q.name), qfix, ...an, ...ns, ...ar]);
}

export const structuredInput: fc.Arbitrary<Input> = fc
  .record({ q: structuredQuery, tcp: transport, tail })
  .map(({ q, tcp, tail }) => ({ msg: encodeQuery(q), tcp, tail }));

/** Hand process() the message as the listeners do, or inside a larger buffer with garbage after `len`. */
export function asProcessed(input: Input): { buf: Buffer; len: number } {
  if (input.tail.length === 0) return { buf: input.msg, len: input.msg.length };
  return { buf: Buffer.concat([input.msg, input.tail]), len: input.msg.length };
}

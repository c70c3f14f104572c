// dns/wire: reads what a query needs — header, the one question, OPT — straight from the packet, into a
// reused scratch object (no per-query objects). Untrusted bytes: every read is bounds-checked; a bad packet
// yields a status, never an exception, and keeps the header so FORMERR can carry the query's ID (§5.5).

export const TYPE = { A: 1, NS: 2, SOA: 6, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, IXFR: 251, AXFR: 252, ANY: 255 } as const;
export const CLASS = { IN: 1, ANY: 255 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;

export const HEADER_BYTES = 12;
/** RFC 1035 §4.2.1 UDP limit without EDNS. */
export const CLASSIC_UDP_BYTES = 512;
/** RFC 1035 §2.3.4: a name is at most 255 octets on the wire, the root's zero octet included. */
const MAX_NAME_WIRE_BYTES = 255;
/** So its labels (length octets included) may take at most this much. */
const MAX_LABELS_WIRE_BYTES = MAX_NAME_WIRE_BYTES - 1;

/** Outcome of parseQuery. */
export const PARSE = {
  OK: 0,
  /** Too short for a header, or QR=1: never answer (§5.5). */
  DROP: 1,
  /** FORMERR with the query's ID (§5.5). */
  FORMERR: 2,
  /** Opcode other than QUERY: NOTIMP (§5.5). */
  NOTIMP: 3,
} as const;
export type ParseStatus = (typeof PARSE)[keyof typeof PARSE];

/** Scratch for one parsed query; one instance per listener, overwritten by each packet. */
export class Query {
  id = 0;
  /**
   * Header flags word (bytes 2-3): what a response echoes (encode.ts echoFlags takes opcode, RD and CD from it).
   * For NOTIMP it keeps only the opcode (§5.5).
   */
  flags = 0;
  opcode = 0;
  /** Offset just after the question name (the name starts at 12). */
  qnameEnd = 0;
  /** Offset just after the question (name + type + class). */
  questionEnd = 0;
  /** True when the question name contains a compression pointer (its bytes cannot be reused verbatim). */
  qnameCompressed = false;
  /** Bytes of the lowercase dotted name in `nameBytes` (no trailing dot; 0 for the root). */
  nameLen = 0;
  /** FNV-1a of those bytes: the answer cache's key (verified against the bytes, so collisions are harmless). */
  nameHash = 0;
  /** Scratch holding the lowercase dotted name; valid until the next parse. */
  nameBytes: Buffer = Buffer.alloc(0);
  #qname: string | null = null;
  /** Lowercase dotted name without the trailing dot ('' for the root). Built on first use: a cache hit never needs it. */
  get qname(): string {
    return (this.#qname ??= this.nameLen === 0 ? '' : this.nameBytes.toString('latin1', 0, this.nameLen));
  }
  /** Forget the memoised name (a new packet is being parsed). */
  resetName(bytes: Buffer): void {
    this.nameBytes = bytes;
    this.#qname = null;
    this.nameLen = 0;
    this.nameHash = 0;
  }
  qtype = 0;
  qclass = 0;
  edns = false;
  ednsUdpSize = 0;
  ednsVersion = 0;
  dnssecOk = false;
}

/**
 * Parse `msg` into `q`. Everything after the question is walked to find the OPT record and to reject
 * malformed packets: truncated records, names with loops, a second OPT, an OPT whose owner is not the root.
 */
export function parseQuery(msg: Uint8Array, len: number, q: Query, scratch: Buffer): ParseStatus {
  q.qtype = 0; // until the question is read (metrics of an early FORMERR must not show the previous query's)
  if (len < HEADER_BYTES) return PARSE.DROP;
  q.id = (msg[0]! << 8) | msg[1]!;
  q.flags = (msg[2]! << 8) | msg[3]!;
  if (q.flags & 0x8000) return PARSE.DROP; // QR=1: a response; answering it invites loops
  q.opcode = (q.flags >> 11) & 0xf;
  q.edns = false;
  q.ednsUdpSize = 0;
  q.ednsVersion = 0;
  q.dnssecOk = false;
  q.qnameCompressed = false;
  if (q.opcode !== 0) {
    // §5.5, RFC 6895 §2: flags other than the opcode are defined for QUERY only, so none is echoed (as NSD/BIND).
    q.flags &= 0x7800;
    return PARSE.NOTIMP;
  }
  const qd = (msg[4]! << 8) | msg[5]!;
  const an = (msg[6]! << 8) | msg[7]!;
  const ns = (msg[8]! << 8) | msg[9]!;
  const ar = (msg[10]! << 8) | msg[11]!;
  if (qd !== 1) return PARSE.FORMERR;
  q.resetName(scratch);

  // Question name → lowercase dotted text in `scratch`, hashed as it is written (FNV-1a, 32 bit).
  let off = HEADER_BYTES;
  let out = 0;
  let hash = 0x811c9dc5;
  let wire = 0;
  let jumps = 0;
  let pos = off;
  let endAfterName = -1;
  let dotted = false;
  for (;;) {
    if (pos >= len) return PARSE.FORMERR;
    const l = msg[pos]!;
    if (l === 0) {
      wire += 1;
      if (endAfterName < 0) endAfterName = pos + 1;
      break;
    }
    if ((l & 0xc0) === 0xc0) {
      if (pos + 1 >= len) return PARSE.FORMERR;
      const ptr = ((l & 0x3f) << 8) | msg[pos + 1]!;
      if (endAfterName < 0) endAfterName = pos + 2;
      q.qnameCompressed = true;
      // Pointers must go strictly backwards into the message: this also bounds loops.
      if (ptr >= pos || ++jumps > 64) return PARSE.FORMERR;
      pos = ptr;
      continue;
    }
    if (l & 0xc0) return PARSE.FORMERR; // 0x40/0x80: extended label types, not supported (RFC 6891 §5)
    if (pos + 1 + l > len) return PARSE.FORMERR;
    wire += 1 + l;
    if (wire > MAX_LABELS_WIRE_BYTES) return PARSE.FORMERR;
    if (out > 0) {
      scratch[out++] = 0x2e;
      hash = Math.imul(hash ^ 0x2e, 0x01000193);
    }
    for (let i = pos + 1; i <= pos + l; i++) {
      let c = msg[i]!;
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      else if (c === 0x2e) {
        c = 0; // a literal dot inside a label must not split it: it can then match nothing
        dotted = true;
      }
      scratch[out++] = c;
      hash = Math.imul(hash ^ c, 0x01000193);
    }
    pos += 1 + l;
  }
  // A compressed name is echoed rewritten from its text (encode.ts), where a dot inside a label cannot be told
  // from a label break: it would come back as another name (§1.4). Such a question cannot be answered: FORMERR.
  if (dotted && q.qnameCompressed) return PARSE.FORMERR;
  off = endAfterName;
  q.qnameEnd = off;
  if (off + 4 > len) return PARSE.FORMERR;
  q.qtype = (msg[off]! << 8) | msg[off + 1]!;
  q.qclass = (msg[off + 2]! << 8) | msg[off + 3]!;
  off += 4;
  q.questionEnd = off;
  q.nameLen = out;
  q.nameHash = hash >>> 0;

  // Answer and authority sections of a query are unusual but legal: skip them, checking they are well formed.
  for (let i = 0; i < an + ns; i++) {
    off = skipRecord(msg, len, off);
    if (off < 0) return PARSE.FORMERR;
  }
  for (let i = 0; i < ar; i++) {
    const start = off;
    const nameEnd = skipName(msg, len, off);
    if (nameEnd < 0 || nameEnd + 10 > len) return PARSE.FORMERR;
    const type = (msg[nameEnd]! << 8) | msg[nameEnd + 1]!;
    const rdlen = (msg[nameEnd + 8]! << 8) | msg[nameEnd + 9]!;
    const rdata = nameEnd + 10;
    if (rdata + rdlen > len) return PARSE.FORMERR;
    if (type === TYPE.OPT) {
      if (q.edns) return PARSE.FORMERR; // two OPT records (RFC 6891 §6.1.1)
      if (nameEnd !== start + 1 || msg[start] !== 0) return PARSE.FORMERR; // OPT owner must be the root
      // Options must tile the RDATA exactly; their content is ignored (§5.6).
      let o = rdata;
      while (o < rdata + rdlen) {
        if (o + 4 > rdata + rdlen) return PARSE.FORMERR;
        const olen = (msg[o + 2]! << 8) | msg[o + 3]!;
        o += 4 + olen;
      }
      if (o !== rdata + rdlen) return PARSE.FORMERR;
      q.edns = true;
      q.ednsUdpSize = (msg[nameEnd + 2]! << 8) | msg[nameEnd + 3]!;
      q.ednsVersion = msg[nameEnd + 5]!;
      q.dnssecOk = (msg[nameEnd + 6]! & 0x80) !== 0;
    }
    off = rdata + rdlen;
  }
  // Trailing garbage after the counted records is ignored, as most servers do.
  return PARSE.OK;
}

/** Offset after a (possibly compressed) name at `off`, or -1 when malformed. */
function skipName(msg: Uint8Array, len: number, off: number): number {
  let wire = 0;
  for (;;) {
    if (off >= len) return -1;
    const l = msg[off]!;
    if (l === 0) return off + 1;
    if ((l & 0xc0) === 0xc0) return off + 2 <= len ? off + 2 : -1;
    if (l & 0xc0) return -1;
    wire += l + 1;
    if (wire > MAX_LABELS_WIRE_BYTES) return -1;
    off += l + 1;
  }
}

function skipRecord(msg: Uint8Array, len: number, off: number): number {
  const n = skipName(msg, len, off);
  if (n < 0 || n + 10 > len) return -1;
  const rdlen = (msg[n + 8]! << 8) | msg[n + 9]!;
  return n + 10 + rdlen <= len ? n + 10 + rdlen : -1;
}

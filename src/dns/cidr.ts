// dns/cidr: IP addresses and CIDR prefixes as 32-bit words, for the ACL and the rate limiter. The per-query
// parser reads the address string Node hands over (rinfo.address, socket.remoteAddress) with charCodeAt into a
// caller's Uint32Array: no string, array or object is built per query.

import { isIP } from 'node:net';
import { z } from 'zod';

/** Address family of a parsed address: 4, 6, or 0 when the text is not an address. */
export type Family = 0 | 4 | 6;

/**
 * Parse `s` into `out` (IPv4: out[0]; IPv6: out[0..3], most significant word first). An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4 client) is returned as IPv4. A zone
 * suffix (%eth0) is ignored. `groups` is scratch of 8 entries (pass one per caller: no allocation).
 */
export function parseAddress(s: string, out: Uint32Array, groups: Uint16Array): Family {
  const n = s.length;
  // IPv4 first: an IPv6 text fails it at its first ':' or hex letter, so each address is read about once.
  const v4 = parseV4(s, 0, n);
  if (v4 >= 0) {
    out[0] = v4;
    return 4;
  }
  if (n < 2) return 0;
  // IPv6: up to 8 groups, one "::", an optional dotted quad as the last 32 bits.
  let end = n;
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) === 37 /* % */) {
      end = i;
      break;
    }
  }
  let count = 0;
  let gap = -1; // index in groups where "::" stands
  let i = 0;
  if (end >= 2 && s.charCodeAt(0) === 58 && s.charCodeAt(1) === 58) {
    gap = 0;
    i = 2;
  } else if (s.charCodeAt(0) === 58) return 0;
  while (i < end) {
    // One group, or a dotted quad at the end.
    let j = i;
    let v = 0;
    let digits = 0;
    let dot = false;
    while (j < end) {
      const c = s.charCodeAt(j);
      const h = hexValue(c);
      if (h >= 0) {
        v = (v << 4) | h;
        digits++;
        j++;
      } else if (c === 46 /* . */) {
        dot = true;
        break;
      } else break;
    }
    if (dot) {
      if (count > 6) return 0;
      const q = parseV4(s, i, end);
      if (q < 0) return 0;
      groups[count++] = q >>> 16;
      groups[count++] = q & 0xffff;
      i = end;
      break;
    }
    if (digits === 0 || digits > 4 || count === 8) return 0;
    groups[count++] = v;
    i = j;
    if (i === end) break;
    if (s.charCodeAt(i) !== 58) return 0;
    i++;
    if (i < end && s.charCodeAt(i) === 58) {
      if (gap >= 0) return 0;
      gap = count;
      i++;
    } else if (i === end) return 0; // a trailing single ':'
  }
  if (gap < 0 ? count !== 8 : count > 7) return 0;
  // Spread: groups before the gap stay, those after move to the end, zeros between.
  const after = gap < 0 ? 0 : count - gap;
  for (let w = 0; w < 4; w++) out[w] = 0;
  for (let g = 0; g < 8; g++) {
    let val = 0;
    if (gap < 0) val = groups[g]!;
    else if (g < gap) val = groups[g]!;
    else if (g >= 8 - after) val = groups[gap + g - (8 - after)]!;
    out[g >> 1] = g & 1 ? (out[g >> 1]! | val) >>> 0 : (val << 16) >>> 0;
  }
  if (out[0] === 0 && out[1] === 0 && out[2] === 0xffff) {
    out[0] = out[3]!;
    return 4;
  }
  return 6;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Dotted quad in s[from, to) as an unsigned 32-bit number, or -1. */
function parseV4(s: string, from: number, to: number): number {
  let v = 0;
  let octet = 0;
  let digits = 0;
  let parts = 0;
  for (let i = from; i <= to; i++) {
    const c = i === to ? 46 : s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || octet > 255) return -1;
      v = v * 256 + octet;
      parts++;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 3) return -1;
      octet = octet * 10 + (c - 48);
      digits++;
    } else return -1;
  }
  return parts === 4 ? v : -1;
}

/** A CIDR prefix, compiled once (config time). */
export interface Prefix {
  readonly family: 4 | 6;
  /** The network, masked (IPv4: words[0]). */
  readonly words: Uint32Array;
  readonly length: number;
  /** The text it came from, for messages and metrics. */
  readonly text: string;
}

/** Mask of the first `bits` bits of a 32-bit word (0..32). */
export function wordMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

/** Parse "a.b.c.d/n", "x::/n" or a bare address (a host prefix); a message (the rule broken) when it is not one. */
export function parsePrefix(text: string): Prefix | string {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const fam = isIP(addr);
  if (fam === 0) return 'must be an IP address or CIDR prefix such as "10.0.0.0/8" or "fd00::/8"';
  const max = fam === 4 ? 32 : 128;
  let length = max;
  if (slash >= 0) {
    const l = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(l) || Number(l) > max) return `the prefix length must be 0..${max}`;
    length = Number(l);
  }
  const words = new Uint32Array(4);
  const parsed = parseAddress(addr, words, new Uint16Array(8));
  // An IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) compares as IPv4.
  let family: 4 | 6 = fam === 4 ? 4 : 6;
  if (fam === 6 && parsed === 4) {
    if (length < 96) return 'an IPv4-mapped prefix must be /96 or longer';
    family = 4;
    length -= 96;
  }
  maskWords(words, family, length);
  return { family, words, length, text };
}

/** Zero the bits of `w` past `length` (IPv4: word 0 only). */
export function maskWords(w: Uint32Array, family: 4 | 6, length: number): void {
  const words = family === 4 ? 1 : 4;
  for (let i = 0; i < words; i++) w[i] = (w[i]! & wordMask(length - 32 * i)) >>> 0;
  if (family === 4) w[1] = w[2] = w[3] = 0;
}

/** Whether a parsed address (family, words) is inside `p`. */
export function prefixContains(p: Prefix, family: Family, a: Uint32Array): boolean {
  if (family !== p.family) return false;
  const w = p.words;
  if (family === 4) return ((a[0]! & wordMask(p.length)) >>> 0) === w[0];
  for (let i = 0; i < 4; i++) {
    const bits = p.length - 32 * i;
    if (bits <= 0) return true;
    if (((a[i]! & wordMask(bits)) >>> 0) !== w[i]) return false;
  }
  return true;
}

/** Config: one CIDR prefix (or bare address), validated and compiled when the config is loaded. */
export const prefixSchema = z.string().transform((s, ctx) => {
  const p = parsePrefix(s.trim());
  if (typeof p === 'string') {
    ctx.addIssue({ code: 'custom', message: p });
    return z.NEVER;
  }
  return s.trim();
});

/** Compile prefixes already validated by prefixSchema. */
export function compilePrefixes(texts: readonly string[]): Prefix[] {
  return texts.map((t) => {
    const p = parsePrefix(t);
    if (typeof p === 'string') throw new RangeError(`"${t}": ${p}`);
    return p;
  });
}

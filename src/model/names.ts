// model/names: DNS label rules and IP address text forms shared by backends and the answer layer.

import { isIP } from 'node:net';

/** RFC 1035 label: 1..63 octets. We accept letters, digits, '-' and '_' (service names like `_grpc` or `my_svc`). */
const LABEL_RE = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** True when `s` (already lowercased) is usable as a single DNS label. */
export function isLabel(s: string): boolean {
  return LABEL_RE.test(s);
}

/**
 * Canonical address text: dotted IPv4, or RFC 5952 IPv6 (lowercase, longest zero run compressed).
 * Returns null when `s` is not an IP literal (e.g. a hostname), so callers can skip it with a warning.
 */
export function canonicalAddress(s: string): { address: string; family: 4 | 6 } | null {
  const fam = isIP(s);
  if (fam === 4) return { address: s.split('.').map((p) => String(Number(p))).join('.'), family: 4 };
  if (fam === 6) return { address: canonicalIPv6(s), family: 6 };
  return null;
}

/** Parse an IPv6 literal to 8 16-bit groups (supports embedded IPv4 and `::`). Assumes isIP(s) === 6. */
export function ipv6Groups(s: string): number[] {
  let text = s.toLowerCase();
  const pct = text.indexOf('%');
  if (pct >= 0) text = text.slice(0, pct);
  const groups: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (v4 && v4[1]) {
    const o = v4[1].split('.').map(Number) as [number, number, number, number];
    tail = [(o[0] << 8) | o[1], (o[2] << 8) | o[3]];
    text = text.slice(0, text.length - v4[1].length);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const dbl = text.indexOf('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  if (dbl >= 0) {
    const head = parse(text.slice(0, dbl));
    const rest = parse(text.slice(dbl + 2));
    const fill = 8 - head.length - rest.length - tail.length;
    groups.push(...head, ...new Array<number>(fill).fill(0), ...rest, ...tail);
  } else {
    groups.push(...parse(text), ...tail);
  }
  return groups;
}

/** RFC 5952 text form of an IPv6 literal. */
export function canonicalIPv6(s: string): string {
  const g = ipv6Groups(s);
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not compressed (RFC 5952 §4.2.2)
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

/**
 * The `.addr` label of an address (§2.4): IPv4 dots → dashes; IPv6 RFC 5952 colons → dashes, with a zero group
 * written out where `::` touches an edge (`::1` → `0--1`, `fd00::` → `fd00--0`, `::` → `0--0`). So the label is a
 * host name (RFC 952/1123: letters, digits, inner hyphens): glibc's getaddrinfo refuses labels that start or end
 * with `-`, and an SRV target must be one.
 */
export function addrLabel(address: string): string {
  if (!address.includes(':')) return address.replace(/\./g, '-');
  let text = address;
  if (text.startsWith('::')) text = `0${text}`;
  if (text.endsWith('::')) text = `${text}0`;
  return text.replace(/:/g, '-');
}

/**
 * Inverse of addrLabel; null when the label is not an address in our form. Returns canonical text.
 * Two spellings name an IPv6 address: addrLabel's, and the older one with `::` left bare at an edge (`--1`),
 * which earlier versions handed out as SRV targets and resolvers may still have cached. No other spelling does.
 */
export function addressFromLabel(label: string): { address: string; family: 4 | 6 } | null {
  if (/^\d{1,3}(-\d{1,3}){3}$/.test(label)) {
    const text = label.replace(/-/g, '.');
    return isIP(text) === 4 ? canonicalAddress(text) : null;
  }
  if (label.includes('-') && /^[0-9a-f-]+$/.test(label)) {
    const text = label.replace(/-/g, ':');
    if (isIP(text) !== 6) return null;
    const c = canonicalIPv6(text);
    return c === text || label === addrLabel(c) ? { address: c, family: 6 } : null;
  }
  return null;
}

/** RFC 952/1123 host-name label: letters, digits, inner hyphens, 1..63 octets (no `_`: never a `_tcp` look-alike). */
const HOST_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * An instance name (§2.6) from a registry's text (a Kubernetes hostname or Pod name, a Consul service ID, a file
 * `id`): lowercased, and kept only when it is a host-name label; otherwise null (rejected, never rewritten: two
 * different IDs must not sanitise into one name). Not checked here: collisions with tags (the answer layer: tags win).
 */
export function instanceLabel(s: string | undefined | null): string | null {
  if (typeof s !== 'string' || s === '') return null;
  const l = s.toLowerCase();
  return HOST_LABEL_RE.test(l) ? l : null;
}

/**
 * The reverse name of a canonical address, without the trailing dot (RFC 1035 §3.5 `in-addr.arpa`, RFC 3596 §2.5
 * `ip6.arpa` nibbles): `10.0.0.1` → `1.0.0.10.in-addr.arpa`.
 */
export function reverseName(address: string, family: 4 | 6): string {
  if (family === 4) return `${address.split('.').reverse().join('.')}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (const g of ipv6Groups(address)) {
    const h = g.toString(16).padStart(4, '0');
    nibbles.push(h[0]!, h[1]!, h[2]!, h[3]!);
  }
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}

/**
 * Parse a reverse name (lowercase, no trailing dot) under `in-addr.arpa` or `ip6.arpa`. `full`: the address when
 * the name has all 4 octets / 32 nibbles; null for a shorter (intermediate) name. `valid: false` when some label is
 * not an octet in canonical decimal (0..255, no leading zero) or a single hex nibble, or there are too many labels:
 * such a name can never exist.
 */
export function parseReverse(name: string): { valid: boolean; full: { address: string; family: 4 | 6 } | null } {
  const bad = { valid: false, full: null };
  if (name.endsWith('in-addr.arpa')) {
    const rel = name.slice(0, name.length - 'in-addr.arpa'.length);
    if (rel === '') return { valid: true, full: null };
    if (!rel.endsWith('.')) return bad;
    const labels = rel.slice(0, -1).split('.');
    if (labels.length > 4) return bad;
    for (const l of labels) if (!/^(0|[1-9]\d{0,2})$/.test(l) || Number(l) > 255) return bad;
    if (labels.length < 4) return { valid: true, full: null };
    return { valid: true, full: { address: labels.reverse().join('.'), family: 4 } };
  }
  if (name.endsWith('ip6.arpa')) {
    const rel = name.slice(0, name.length - 'ip6.arpa'.length);
    if (rel === '') return { valid: true, full: null };
    if (!rel.endsWith('.')) return bad;
    const labels = rel.slice(0, -1).split('.');
    if (labels.length > 32) return bad;
    for (const l of labels) if (!/^[0-9a-f]$/.test(l)) return bad;
    if (labels.length < 32) return { valid: true, full: null };
    const hex = labels.reverse().join('');
    const groups: string[] = [];
    for (let i = 0; i < 32; i += 4) groups.push(hex.slice(i, i + 4));
    return { valid: true, full: { address: canonicalIPv6(groups.join(':')), family: 6 } };
  }
  return bad;
}

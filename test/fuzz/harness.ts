// test/fuzz/harness: what every fuzz file shares — the real app (config validated by the real schema, a real
// services file read by the file backend, the processor exactly as startApp assembles it, UDP+TCP on
// 127.0.0.1:0) serving a realistic data set, the oracle that judges each response with an independent decoder
// (dns-packet), the seed corpus, and the regression store (failing inputs saved as files the suite replays).

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as dnsPacket from 'dns-packet';
import type { QueryProcessor } from '../../src/dns/processor.ts';
import { addrLabel } from '../../src/model/names.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';

export const FUZZ_DIR = dirname(fileURLToPath(import.meta.url));
export const CORPUS_DIR = join(FUZZ_DIR, 'corpus');
export const REGRESSIONS_DIR = join(FUZZ_DIR, 'regressions');

/** The EDNS size the fuzzed server advertises: the default of config/svcdns.yaml. */
export const MAX_UDP = 1232;
export const DOMAIN = 'sd.internal';

// ---- the data set ----

const ipv4 = (i: number) => `10.${20 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`;
const ipv6 = (i: number) => `fd00:20::${i.toString(16)}`;

/** A services file with the shapes that stress the encoder: tags, scopes, dual stack, SRV with glue, answers that truncate. */
export function servicesYaml(): string {
  const lines: string[] = ['services:'];
  const service = (name: string, instances: string[], extra: string[] = []) => {
    lines.push(`  - name: ${name}`, ...extra.map((e) => `    ${e}`), '    instances:', ...instances);
  };
  const inst = (address: string, rest: string[]) => [`      - address: "${address}"`, ...rest.map((r) => `        ${r}`)];
  service('web', [
    ...inst('10.0.0.1', ['port: 8080', 'tags: [primary]']),
    ...inst('10.0.0.2', ['port: 8080', 'tags: [canary]']),
    ...inst('10.0.0.3', ['port: 8080', 'healthy: false', 'tags: [broken]']),
  ]);
  service('api', [
    ...inst('10.0.1.1', ['ports: { http: 80, grpc: 9090 }']),
    ...inst('fd00::1:1', ['ports: { http: 80, grpc: 9090 }']),
  ], ['ttlSeconds: 30']);
  service('db', [...inst('10.0.2.1', ['port: 5432', 'healthy: false'])]);
  service('web', [...inst('10.1.0.1', ['port: 8080'])], ['scope: staging']);
  service('dns', [...inst('10.0.3.1', ['ports: [ { name: dns, port: 53, protocol: udp }, { name: dns-tcp, port: 53, protocol: tcp } ]'])]);
  // 150 IPv4 addresses: 150 × 16 B answers do not fit 512 or 1232 bytes (TC=1), they fit TCP.
  const big: string[] = [];
  for (let i = 0; i < 150; i++) big.push(...inst(ipv4(i), ['port: 80', `tags: [${i % 2 ? 'odd' : 'even'}]`]));
  service('big', big);
  const big6: string[] = [];
  for (let i = 1; i <= 90; i++) big6.push(...inst(ipv6(i), ['port: 80']));
  service('big6', big6);
  // Dual stack with SRV: 40 instances × 2 named ports, glue in Additional (§4.2 keeps it consistent when cut).
  const wide: string[] = [];
  for (let i = 0; i < 40; i++) wide.push(...inst(i % 3 ? ipv4(1000 + i) : ipv6(1000 + i), ['ports: { http: 80, admin: 9000 }', `weight: ${1 + (i % 7)}`]));
  service('wide', wide, ['tags: [blue]']);
  service('a-very-long-service-name-that-is-exactly-sixty-three-octets-abc', [...inst('10.0.4.1', ['port: 1'])]);
  return lines.join('\n') + '\n';
}

/** Labels a structured query is made of: real names, their parts, and names that exist nowhere. */
export function nameParts(): { hits: string[]; full: string[]; labels: string[] } {
  const services = ['web', 'api', 'db', 'big', 'big6', 'wide', 'dns', 'a-very-long-service-name-that-is-exactly-sixty-three-octets-abc', 'nosuch'];
  const tags = ['primary', 'canary', 'broken', 'odd', 'even', 'blue', 'http', 'grpc', 'admin', 'dns', 'nosuchtag'];
  const addrs = ['10.0.0.1', '10.0.0.3', '10.0.1.1', 'fd00::1:1', ipv4(7), ipv6(3), ipv6(1000), '192.0.2.1'].map(addrLabel);
  const full: string[] = [DOMAIN, `ns.${DOMAIN}`, `service.${DOMAIN}`, `addr.${DOMAIN}`, `staging.${DOMAIN}`, 'example.com', ''];
  for (const s of services) {
    full.push(`${s}.service.${DOMAIN}`, `${s}.service.staging.${DOMAIN}`, `_${s}._tcp.service.${DOMAIN}`);
    for (const t of tags) full.push(`${t}.${s}.service.${DOMAIN}`, `_${t}._tcp.${s}.service.${DOMAIN}`, `_${s}._${t}.service.${DOMAIN}`);
  }
  for (const a of addrs) full.push(`${a}.addr.${DOMAIN}`, `${a}.addr.staging.${DOMAIN}`);
  const labels = [...services, ...tags, ...addrs, 'service', 'addr', 'staging', 'sd', 'internal', '_tcp', '_udp', '*', 'xn--bcher-kva', 'a'.repeat(63)];
  // Names that have data: what most real queries ask, so most structured queries reach the encoder.
  const hits = [
    DOMAIN,
    `ns.${DOMAIN}`,
    ...['web', 'api', 'big', 'big6', 'wide', 'dns', services[7]!].map((s) => `${s}.service.${DOMAIN}`),
    `web.service.staging.${DOMAIN}`,
    `primary.web.service.${DOMAIN}`,
    `odd.big.service.${DOMAIN}`,
    `blue.wide.service.${DOMAIN}`,
    `_http._tcp.wide.service.${DOMAIN}`,
    `_admin._tcp.wide.service.${DOMAIN}`,
    `_wide._tcp.service.${DOMAIN}`,
    `_wide._blue.service.${DOMAIN}`,
    `_big._tcp.service.${DOMAIN}`,
    `_grpc._tcp.api.service.${DOMAIN}`,
    `_dns._udp.dns.service.${DOMAIN}`,
    ...addrs.slice(0, 7).map((a) => `${a}.addr.${DOMAIN}`),
  ];
  return { hits, full, labels };
}

// ---- the server ----

export interface FuzzServer {
  readonly server: TestServer;
  readonly processor: QueryProcessor;
  readonly port: number;
  stop(): Promise<void>;
}

/** Start the real app on the data set and wait until the file backend has served its first snapshot. */
export async function startFuzzServer(): Promise<FuzzServer> {
  const dir = mkdtempSync(join(tmpdir(), 'svcdns-fuzz-'));
  let server: TestServer | undefined;
  try {
    writeFileSync(join(dir, 'services.yaml'), servicesYaml());
    server = await startServer(
      { maxUdpPayloadBytes: MAX_UDP, order: 'random', backends: [{ type: 'file', name: 'static', path: 'services.yaml' }] },
      { configDir: dir },
    );
    const s = server;
    const processor = s.app.processor;
    const probe = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: `big.service.${DOMAIN}`, type: 'A' }] });
    await waitFor(() => {
      const r = processor.process(probe, probe.length, true);
      return r !== null && (r[3]! & 0xf) === 0 && r.readUInt16BE(6) === 150;
    });
    return {
      server: s,
      processor,
      port: s.port,
      stop: async () => {
        try {
          await s.stop();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

// ---- the oracle ----

/** The query as an independent reader sees it (written here from RFC 1035/6891, not shared with src/dns/wire.ts). */
export interface QueryView {
  /** The 12-byte header is there. */
  readonly header: boolean;
  readonly id: number;
  readonly qr: boolean;
  readonly opcode: number;
  /**
   * The question name uses a compression pointer. In a query it can only point into the header or forward,
   * so FORMERR and an answer are both acceptable; if answered, the question is compared case-insensitively.
   */
  readonly compressed: boolean;
  /**
   * FORMERR and an answer are both acceptable: a compressed question name, or a pointer in a later section
   * that leads nowhere (a server that never reads those names need not follow it).
   */
  readonly ambiguous: boolean;
  /** QDCOUNT = 1, the question reads, its name is at most 255 octets, every section is framed right, at most one OPT, at the root. */
  readonly wellFormed: boolean;
  /** A question label holds a literal dot (legal; such a name matches nothing we serve, and its text form is ambiguous). */
  readonly dotInLabel: boolean;
  /** The question (name as sent, case kept), when it reads. */
  readonly question: { name: string; type: number; class: number } | null;
  /** The OPT's advertised size and version, when present. */
  readonly opt: { size: number; version: number; dnssecOk: boolean } | null;
}

interface RawName {
  readonly name: string;
  /** Offset just after the name where it is written (not where pointers lead). */
  readonly end: number;
  readonly wire: number;
  readonly compressed: boolean;
  readonly dotInLabel: boolean;
}

/** Read a name at `pos`: labels joined by dots (case kept). Null when it runs off the end, loops or uses 0x40/0x80 labels. */
function readName(msg: Buffer, pos: number): RawName | null {
  const labels: string[] = [];
  let end = -1;
  let jumps = 0;
  let wire = 1;
  let compressed = false;
  let dotInLabel = false;
  for (;;) {
    if (pos >= msg.length) return null;
    const l = msg[pos]!;
    if (l === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    if ((l & 0xc0) === 0xc0) {
      if (pos + 1 >= msg.length || ++jumps > 128) return null;
      if (end < 0) end = pos + 2;
      compressed = true;
      pos = ((l & 0x3f) << 8) | msg[pos + 1]!;
      continue;
    }
    if (l & 0xc0) return null;
    if (pos + 1 + l > msg.length) return null;
    const label = msg.toString('latin1', pos + 1, pos + 1 + l);
    if (label.includes('.')) dotInLabel = true;
    labels.push(label);
    wire += 1 + l;
    pos += 1 + l;
  }
  return { name: labels.join('.'), end, wire, compressed, dotInLabel };
}

export function viewQuery(msg: Buffer): QueryView {
  const header = msg.length >= 12;
  const id = header ? msg.readUInt16BE(0) : 0;
  const flags = header ? msg.readUInt16BE(2) : 0;
  const base = { header, id, qr: (flags & 0x8000) !== 0, opcode: (flags >> 11) & 0xf };
  const bad = { ...base, compressed: false, ambiguous: false, dotInLabel: false, wellFormed: false, question: null, opt: null };
  if (!header || msg.readUInt16BE(4) !== 1) return bad;
  const qn = readName(msg, 12);
  if (qn === null || qn.end + 4 > msg.length) return bad;
  const question = { name: qn.name, type: msg.readUInt16BE(qn.end), class: msg.readUInt16BE(qn.end + 2) };
  const view = { ...base, compressed: qn.compressed, ambiguous: qn.compressed, dotInLabel: qn.dotInLabel, question, opt: null };
  // RFC 1035 §2.3.4: at most 255 octets.
  if (qn.wire > 255) return { ...view, wellFormed: false };
  const lenient = walkSections(msg, qn.end + 4, false);
  if (lenient === null) return { ...view, wellFormed: false };
  const strict = walkSections(msg, qn.end + 4, true);
  return { ...view, wellFormed: true, ambiguous: view.ambiguous || strict === null, opt: lenient.opt };
}

/**
 * Walk the answer, authority and additional sections from `o`. `followPointers`: also check that every
 * compression pointer in their owner names leads to a name that reads (RFC 1035 §4.1.4); without it a pointer
 * is just two octets, as a server that never reads those names may treat it. Null when badly framed.
 */
function walkSections(msg: Buffer, o: number, followPointers: boolean): { opt: QueryView['opt'] } | null {
  const skip = (at: number): number => {
    if (followPointers) {
      const n = readName(msg, at);
      return n === null || n.wire > 255 ? -1 : n.end;
    }
    let wire = 1;
    for (;;) {
      if (at >= msg.length) return -1;
      const l = msg[at]!;
      if (l === 0) return at + 1;
      if ((l & 0xc0) === 0xc0) return at + 2 <= msg.length ? at + 2 : -1;
      if (l & 0xc0) return -1;
      wire += l + 1;
      if (wire > 255) return -1;
      at += l + 1;
    }
  };
  for (let i = 0; i < msg.readUInt16BE(6) + msg.readUInt16BE(8); i++) {
    const n = skip(o);
    if (n < 0 || n + 10 > msg.length || n + 10 + msg.readUInt16BE(n + 8) > msg.length) return null;
    o = n + 10 + msg.readUInt16BE(n + 8);
  }
  let opt: QueryView['opt'] = null;
  for (let i = 0; i < msg.readUInt16BE(10); i++) {
    const start = o;
    const n = skip(o);
    if (n < 0 || n + 10 > msg.length) return null;
    const rdlen = msg.readUInt16BE(n + 8);
    if (n + 10 + rdlen > msg.length) return null;
    if (msg.readUInt16BE(n) === 41) {
      // RFC 6891 §6.1.1: one OPT, owned by the root; its options tile the RDATA.
      if (opt !== null || n !== start + 1) return null;
      let p = n + 10;
      while (p + 4 <= n + 10 + rdlen) p += 4 + msg.readUInt16BE(p + 2);
      if (p !== n + 10 + rdlen) return null;
      opt = { size: msg.readUInt16BE(n + 2), version: msg[n + 5]!, dnssecOk: (msg[n + 6]! & 0x80) !== 0 };
    }
    o = n + 10 + rdlen;
  }
  return { opt };
}

/**
 * Judge one response to `query` (null = dropped) with dns-packet as the independent decoder. Returns the
 * violated properties, empty when the response is fine.
 */
export function judge(query: Buffer, tcp: boolean, resp: Buffer | null): string[] {
  const v = viewQuery(query);
  const out: string[] = [];
  // §5.5: dropped exactly when there is no header, or it is a response (QR=1); §5.7: everything else is answered.
  const mustDrop = !v.header || v.qr;
  if (resp === null) {
    if (!mustDrop) out.push('dropped a query that has a header and QR=0 (§5.5, §5.7)');
    return out;
  }
  if (mustDrop) out.push(v.header ? 'answered a message with QR=1 (§5.5)' : 'answered a message shorter than a header (§5.5)');
  if (resp.length < 12) return [...out, `response of ${resp.length} bytes has no header`];
  type Decoded = dnsPacket.Packet & { flag_tc?: boolean };
  let r: Decoded;
  try {
    r = dnsPacket.decode(resp) as Decoded;
  } catch (err) {
    return [...out, `dns-packet cannot decode the response: ${(err as Error).message}`];
  }
  if (dnsPacket.decode.bytes !== resp.length) out.push(`response has ${resp.length - dnsPacket.decode.bytes} bytes after its records`);
  const flags = resp.readUInt16BE(2);
  if (resp.readUInt16BE(0) !== v.id) out.push(`ID ${resp.readUInt16BE(0)} is not the query's ${v.id} (§3.7)`);
  if (!(flags & 0x8000)) out.push('QR=0 in a response (§3.7)');
  if (((flags >> 11) & 0xf) !== v.opcode) out.push('opcode not echoed (§3.7)');
  if (flags & 0x0080) out.push('RA=1 (§1.2)');
  if (flags & 0x0040) out.push('Z bit echoed (§5.6)');
  if (flags & 0x0020) out.push('AD=1: nothing here is DNSSEC-validated');
  const queryFlags = query.readUInt16BE(2);
  // §3.7: RD copied; CD copied too (RFC 6840 §5.9). NOTIMP echoes nothing but the opcode (checked below).
  if (v.opcode === 0 && (flags & 0x0110) !== (queryFlags & 0x0110)) out.push('RD/CD not echoed (§3.7)');
  const rcode = flags & 0xf;
  // Size (§4.2, §4.3): TCP 65535; UDP 512, or with an OPT the client's size (at least 512) capped by ours.
  const limit = tcp ? 65_535 : v.opt && v.wellFormed ? Math.min(Math.max(v.opt.size, 512), MAX_UDP) : 512;
  if (resp.length > limit) out.push(`${resp.length} bytes over the limit ${limit} (${tcp ? '§4.3' : '§4.2'})`);
  const opts = (r.additionals ?? []).filter((a) => a.type === 'OPT') as unknown as { extendedRcode: number; ednsVersion: number; flags: number }[];
  if (opts.length > 1) out.push('more than one OPT in the response (RFC 6891 §6.1.1)');
  if (v.opcode !== 0) {
    // §5.5 NOTIMP: AA=0, empty sections, no flags but the opcode.
    if (rcode !== 4) out.push(`opcode ${v.opcode}: rcode ${rcode}, not NOTIMP (§5.5)`);
    if ((flags & 0x07f0) !== 0) out.push('NOTIMP echoes flags other than the opcode (§5.5)');
    if (resp.readUInt16BE(4) + resp.readUInt16BE(6) + resp.readUInt16BE(8) + resp.readUInt16BE(10) !== 0) out.push('NOTIMP with records (§5.5)');
    return out;
  }
  // Every backend has synced and nothing fails: a SERVFAIL is an exception caught inside process() (§5.7).
  if (rcode === 2) out.push('SERVFAIL: an internal error inside process() (§5.7)');
  const qdcount = resp.readUInt16BE(4);
  if (!v.wellFormed) {
    // Could not be parsed, header readable: FORMERR with the ID (§5.5). A compressed question name may be
    // answered instead (see QueryView.compressed), then with its question.
    if (!v.ambiguous && rcode !== 1) out.push(`rcode ${rcode}, not FORMERR, for a query that cannot be parsed (§5.5)`);
    if (rcode === 1 && resp.length !== 12 + (opts.length ? 11 : 0)) out.push('FORMERR with records');
    if (rcode === 1 || !v.ambiguous) return out;
  } else if (rcode === 1) {
    if (v.ambiguous) return out;
    out.push('FORMERR for a well-formed query (§5.5)');
    return out;
  }
  const q = v.question!;
  if (qdcount !== 1) {
    out.push(`${qdcount} questions in the answer to a one-question query`);
  } else {
    const echoed = readName(resp, 12);
    const same = (a: string, b: string) => (v.compressed ? a.toLowerCase() === b.toLowerCase() : a === b);
    // §1.4: the question is echoed byte for byte.
    if (!echoed || echoed.end + 4 > resp.length || !same(echoed.name, q.name) || resp.readUInt16BE(echoed.end) !== q.type || resp.readUInt16BE(echoed.end + 2) !== q.class) {
      out.push(`question not echoed: sent ${JSON.stringify(q)}, got ${JSON.stringify(echoed?.name)} (§1.4)`);
    }
  }
  if (v.opt && opts.length !== 1) out.push('EDNS query without OPT in the response (§5.6)');
  if (!v.opt && opts.length > 0) out.push('OPT in the response to a query without EDNS (§5.6)');
  if (opts.length === 1) {
    const o = opts[0]!;
    if (o.ednsVersion !== 0) out.push(`OPT version ${o.ednsVersion} in the response (§5.6)`);
    if (((o.flags & 0x8000) !== 0) !== (v.opt?.dnssecOk ?? false)) out.push('DO not copied (§5.6)');
    if ((o.flags & 0x7fff) !== 0) out.push('unknown EDNS flags echoed (§5.6)');
  }
  if (v.opt && v.opt.version > 0) {
    // §5.6: BADVERS = extended rcode 16: header rcode 0, OPT extended rcode 1; AA=0, no answer.
    if (rcode !== 0 || opts[0]?.extendedRcode !== 1) out.push(`EDNS version ${v.opt.version}: not BADVERS (§5.6)`);
    if (flags & 0x0400 || (r.answers ?? []).length > 0) out.push('BADVERS with AA=1 or answers (§5.6)');
    return out;
  }
  if (tcp && flags & 0x0200) out.push('TC=1 over TCP (§4.3)');
  if (q.class !== 1 && q.class !== 255 && rcode !== 5) out.push(`class ${q.class}: rcode ${rcode}, not REFUSED (§5.5)`);
  if ((q.type === 252 || q.type === 251) && rcode !== 5) out.push('AXFR/IXFR not REFUSED (§5.5)');
  const lower = q.name.toLowerCase();
  const inZone = lower === DOMAIN || lower.endsWith(`.${DOMAIN}`);
  if (!inZone && !v.dotInLabel && rcode !== 5) out.push(`out-of-zone ${q.name}: rcode ${rcode}, not REFUSED (§1.2)`);
  if (rcode === 0 || rcode === 3) {
    if (!(flags & 0x0400)) out.push('AA=0 in an authoritative answer (§3.7)');
    // Answers are owned by the question name, in the client's spelling (§1.4).
    for (const a of r.answers ?? []) if (v.compressed ? a.name.toLowerCase() !== lower : a.name !== q.name) out.push(`answer owner ${a.name} is not the question ${q.name} (§1.4)`);
    if (rcode === 3 && (r.answers ?? []).length > 0) out.push('NXDOMAIN with answers (§5.1)');
    if ((r.answers ?? []).length === 0 && !(flags & 0x0200) && !(r.authorities ?? []).some((a) => a.type === 'SOA')) out.push('negative answer without SOA (§5.1, §5.2)');
    // §4.2: never an empty Answer with a full Additional; every SRV target sent has its glue, and only those.
    const srvTargets = new Set((r.answers ?? []).filter((a) => a.type === 'SRV').map((a) => (a.data as { target: string }).target.toLowerCase()));
    const glue = (r.additionals ?? []).filter((a) => a.type === 'A' || a.type === 'AAAA');
    if ((r.answers ?? []).length === 0 && glue.length > 0) out.push('empty Answer with glue in Additional (§4.2)');
    for (const g of glue) if (!srvTargets.has(g.name.toLowerCase())) out.push(`glue for ${g.name}, which no SRV answer names (§4.2)`);
    const glued = new Set(glue.map((g) => g.name.toLowerCase()));
    for (const t of srvTargets) if (!glued.has(t)) out.push(`SRV target ${t} without glue (§3.2, §4.2)`);
  }
  return out;
}

// ---- corpus and regressions ----

/** The seed corpus: real dig/kdig queries captured by capture-corpus.ts (binary files). */
export function loadCorpus(): Buffer[] {
  return readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => readFileSync(join(CORPUS_DIR, f)));
}

export interface Regression {
  readonly file: string;
  readonly target: string;
  readonly tcp: boolean;
  readonly bytes: Buffer;
  readonly note: string;
}

/** Save a failing input so the normal suite replays it (test/fuzz/regressions.test.ts). Returns the path. */
export function saveRegression(target: string, input: Buffer | string, tcp: boolean, note: string): string {
  mkdirSync(REGRESSIONS_DIR, { recursive: true });
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const hash = createHash('sha256').update(target).update(bytes).digest('hex').slice(0, 16);
  const file = join(REGRESSIONS_DIR, `${target}-${hash}.json`);
  writeFileSync(file, JSON.stringify({ target, tcp, hex: bytes.toString('hex'), note: note.slice(0, 2000) }, null, 2) + '\n');
  return file;
}

export function loadRegressions(): Regression[] {
  let files: string[];
  try {
    files = readdirSync(REGRESSIONS_DIR).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return files.map((f) => {
    const j = JSON.parse(readFileSync(join(REGRESSIONS_DIR, f), 'utf8')) as { target: string; tcp: boolean; hex: string; note: string };
    return { file: f, target: j.target, tcp: j.tcp, bytes: Buffer.from(j.hex, 'hex'), note: j.note };
  });
}

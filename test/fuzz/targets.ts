// test/fuzz/targets: one fuzz target per input kind, each returning the properties an input violated (empty:
// fine). Shared by the bounded fuzz in `npm test`, the long `npm run fuzz` and the regression replay.

import * as dnsPacket from 'dns-packet';
import type { QueryProcessor } from '../../src/dns/processor.ts';
import { ConfigError, parseConfigText } from '../../src/config/load.ts';
import { parseServicesFile } from '../../src/backends/file/parse.ts';
import { BackendError } from '../../src/backends/backend.ts';
import { isIP } from 'node:net';
import { isLabel } from '../../src/model/names.ts';
import { asProcessed, type Input } from './arbitraries.ts';
import { judge } from './harness.ts';

function describeThrow(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err);
}

/**
 * A decoded section as comparable text: order-free (§3.5 rotates and shuffles) and case-free, since names in
 * RDATA (SOA, NS) may be compressed against the question and so take the client's spelling (RFC 4343).
 */
function section(rrs: readonly dnsPacket.Answer[] | undefined): string {
  return (rrs ?? [])
    .filter((r) => r.type !== 'OPT')
    .map((r) => `${r.name} ${r.type} ${r.ttl ?? ''} ${JSON.stringify((r as { data?: unknown }).data)}`.toLowerCase())
    .sort()
    .join('\n');
}

/**
 * process() the input over UDP and over TCP (in the input's order: the first one fills the cache), judge both,
 * and compare them: the same rcode, and a UDP answer without TC=1 carries exactly what the TCP answer does (§4.2).
 */
export function processorTarget(p: QueryProcessor, input: Input): string[] {
  const { buf, len } = asProcessed(input);
  const msg = buf.subarray(0, len);
  const order = input.tcp ? [true, false] : [false, true];
  const out: string[] = [];
  const resp = new Map<boolean, Buffer | null>();
  for (const tcp of order) {
    // The processor owns no copy of the message: give each call its own, as each datagram is its own buffer.
    const copy = Buffer.from(buf);
    let r: Buffer | null;
    try {
      r = p.process(copy, len, tcp);
    } catch (err) {
      out.push(`process() threw (${tcp ? 'TCP' : 'UDP'}): ${describeThrow(err)}`);
      continue;
    }
    resp.set(tcp, r);
    for (const problem of judge(msg, tcp, r)) out.push(`${tcp ? 'TCP' : 'UDP'}: ${problem}`);
  }
  // The same question again, other letter case and ID: now a cache hit, which patches in this ID, RD/CD and
  // spelling (§1.4); it must still be judged well formed, and hold what the miss did.
  const first = resp.get(order[0]!);
  const again = respell(buf, len);
  if (first && again) {
    let r: Buffer | null = null;
    try {
      r = p.process(again, len, order[0]!);
    } catch (err) {
      out.push(`process() threw on the cached path: ${describeThrow(err)}`);
    }
    for (const problem of judge(again.subarray(0, len), order[0]!, r)) out.push(`again (cached): ${problem}`);
    if (r && out.length === 0 && (r[3]! & 0xf) !== (first[3]! & 0xf)) out.push('the cached answer has another rcode than the first');
    if (r && out.length === 0 && !(first[2]! & 0x02) && !(r[2]! & 0x02)) {
      const a = dnsPacket.decode(first);
      const b = dnsPacket.decode(r);
      if (section(a.answers) !== section(b.answers) || section(a.additionals) !== section(b.additionals)) out.push('the cached answer holds other records than the first (§6.4)');
    }
  }
  const u = resp.get(false);
  const t = resp.get(true);
  if (out.length === 0 && u && t) {
    if ((u[3]! & 0xf) !== (t[3]! & 0xf)) out.push(`UDP rcode ${u[3]! & 0xf} but TCP rcode ${t[3]! & 0xf}`);
    else if (!(u[2]! & 0x02)) {
      const du = dnsPacket.decode(u);
      const dt = dnsPacket.decode(t);
      for (const [name, a, b] of [
        ['answer', du.answers, dt.answers],
        ['authority', du.authorities, dt.authorities],
        ['additional', du.additionals, dt.additionals],
      ] as const) {
        if (section(a) !== section(b)) out.push(`UDP answer without TC=1 differs from TCP in ${name} (§4.2)`);
      }
    }
  }
  return out;
}

/**
 * A copy of the query with another ID and the letters of its question name in the other case (0x20), when the
 * name is written out (no pointer) and has letters; null otherwise.
 */
function respell(buf: Buffer, len: number): Buffer | null {
  if (len < 13) return null;
  const out = Buffer.from(buf);
  out.writeUInt16BE(out.readUInt16BE(0) ^ 0x5a5a, 0);
  let pos = 12;
  let letters = 0;
  while (pos < len) {
    const l = out[pos]!;
    if (l === 0) break;
    if (l & 0xc0 || pos + 1 + l > len) return null;
    for (let i = pos + 1; i <= pos + l; i++) {
      const c = out[i]! | 0x20;
      if (c >= 0x61 && c <= 0x7a) {
        out[i] = out[i]! ^ 0x20;
        letters++;
      }
    }
    pos += 1 + l;
  }
  return letters > 0 ? out : null;
}

const LINE = /^line \d+: /;

/** The services-file parser: a valid result, or one BackendError BAD_DATA whose every problem is located. */
export function servicesTarget(text: string, fileName: string): string[] {
  let parsed;
  try {
    parsed = parseServicesFile(text, fileName, 'default');
  } catch (err) {
    if (!(err instanceof BackendError) || err.code !== 'SVCDNS_BACKEND_BAD_DATA') return [`threw something other than BackendError BAD_DATA: ${describeThrow(err)}`];
    const out: string[] = [];
    if (!err.message.startsWith(`${fileName}: `)) out.push(`message does not start with the file name: ${err.message}`);
    const problems = (err.details as { problems?: unknown } | undefined)?.problems;
    if (!Array.isArray(problems) || problems.length === 0) return [...out, `no problems listed: ${err.message}`];
    for (const pr of problems) {
      if (typeof pr !== 'string') {
        out.push(`problem is not text: ${String(pr)}`);
        continue;
      }
      // A located problem: `line N: path: reason` (a syntax error: `line N: invalid YAML/JSON: reason`).
      const wholeFile = pr.startsWith('is empty');
      // A syntax error may carry its place in the parser's own words ("at line 3, column 5", "(line 3 column 5)").
      const located = LINE.test(pr) || /\bline \d+,? column \d+/.test(pr);
      if (!wholeFile && !located) out.push(`problem without a line: ${pr}`);
      const rest = pr.replace(LINE, '');
      if (!wholeFile && !/^(invalid (YAML|JSON): .+|[^:\s][^\n]*?: .+)$/s.test(rest)) out.push(`problem without a path and a reason: ${pr}`);
    }
    return out;
  }
  const out: string[] = [];
  const seen = new Set<string>();
  for (const s of parsed.services) {
    if (!isLabel(s.name) || !isLabel(s.scope)) out.push(`accepted a service name or scope that is not a label: ${s.scope}/${s.name}`);
    const key = `${s.scope}/${s.name}`;
    if (seen.has(key)) out.push(`accepted a duplicate service ${key}`);
    seen.add(key);
    for (const i of s.instances) {
      for (const port of i.ports) if (!Number.isInteger(port.port) || port.port < 1 || port.port > 65535) out.push(`accepted port ${port.port}`);
      if (!Number.isInteger(i.weight) || i.weight < 1 || i.weight > 65535) out.push(`accepted weight ${i.weight}`);
      for (const t of i.tags) if (t !== t.toLowerCase()) out.push(`tag ${t} not lowercased`);
    }
  }
  return out;
}

/** The config loader: a frozen config that validates again, or a ConfigError whose every issue is located. */
export function configTarget(text: string, fileName: string): string[] {
  let config;
  try {
    config = parseConfigText(text, fileName);
  } catch (err) {
    if (!(err instanceof ConfigError) || err.code !== 'SVCDNS_CONFIG_INVALID') return [`threw something other than ConfigError: ${describeThrow(err)}`];
    const out: string[] = [];
    if (err.file !== fileName) out.push(`error names file ${err.file}`);
    if (err.issues.length === 0) out.push('ConfigError without issues');
    for (const i of err.issues) {
      // The whole document is not a mapping: nothing narrower to point at.
      const wholeFile = i.path === '' && i.message.startsWith('must be a mapping');
      if (!wholeFile && !(typeof i.line === 'number' && i.line >= 1)) out.push(`issue without a line: ${i.path}: ${i.message}`);
      if (!wholeFile && i.path === '' && !i.message.startsWith('not valid YAML')) out.push(`issue without a path: ${i.message}`);
      if (i.message.trim() === '') out.push(`issue without a reason at ${i.path}`);
    }
    return out;
  }
  // Accepted: the invariants the rest of the server relies on (the schema's transforms ran, nothing is mutable).
  const out: string[] = [];
  if (!Object.isFrozen(config) || !Object.isFrozen(config.backends)) out.push('config not frozen');
  for (const l of config.listen) if (!isIP(l.host) || !Number.isInteger(l.port) || l.port < 0 || l.port > 65535) out.push(`accepted listen ${JSON.stringify(l)}`);
  if (config.domains.length === 0 || config.domains.some((d) => d !== d.toLowerCase() || d.endsWith('.') || d === '')) out.push(`accepted domains ${JSON.stringify(config.domains)}`);
  if (!(config.maxUdpPayloadBytes >= 512 && config.maxUdpPayloadBytes <= 65535)) out.push(`accepted maxUdpPayloadBytes ${config.maxUdpPayloadBytes}`);
  if (config.backends.length === 0) out.push('accepted a config without backends');
  return out;
}

// test/fuzz/text-arbitraries: config files and services files for the loaders — valid documents with values
// replaced, keys added or dropped, written as YAML (block and flow) or JSON, and text mutations of the sample
// files (characters, lines, indentation, YAML syntax: anchors, tags, multi-documents).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { FUZZ_DIR } from './harness.ts';

const REPO = join(FUZZ_DIR, '..', '..');
const sampleConfig = readFileSync(join(REPO, 'config', 'svcdns.yaml'), 'utf8');
const sampleServices = readFileSync(join(REPO, 'config', 'services.yaml'), 'utf8');

export interface TextInput {
  readonly text: string;
  readonly fileName: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Values a config or services file may hold where another was expected. */
const oddValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1.5, 65536, 1e300, '', ' ', '10.0.0.1', '::1', 'fe80::1%eth0', '[::1]:53', '127.0.0.1:0', 'auto', 'yes', '0x10', '1e3', '~', 'NaN', '__proto__', 'constructor', '*', 'a'.repeat(300)),
  fc.integer({ min: -70000, max: 70000 }),
  fc.string({ maxLength: 12 }),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);

/** A path into `doc` (chosen by indexes into the keys met) and an edit there. */
const edit = fc.record({
  steps: fc.array(fc.nat(), { maxLength: 5 }),
  kind: fc.constantFrom('replace', 'delete', 'add', 'wrap'),
  key: fc.oneof(fc.constantFrom('ttl', 'typo', '__proto__', 'constructor', 'path', 'port', 'ports', 'tags', 'type', 'name', 'scope', 'healthy', 'check', 'address'), fc.string({ maxLength: 8 })),
  value: oddValue,
});

function applyEdit(doc: Json, e: { steps: number[]; kind: string; key: string; value: Json }): Json {
  const root = structuredClone(doc);
  let parent: Json = root;
  for (const s of e.steps) {
    if (parent === null || typeof parent !== 'object') break;
    const keys = Object.keys(parent);
    if (keys.length === 0) break;
    const k = keys[s % keys.length]!;
    const child: Json = (parent as Record<string, Json>)[k]!;
    if (child === null || typeof child !== 'object' || s % 3 === 0) {
      const p = parent as Record<string, Json>;
      if (e.kind === 'replace') p[k] = e.value;
      else if (e.kind === 'delete') delete p[k];
      else if (e.kind === 'wrap') p[k] = [p[k]!];
      else if (Array.isArray(p)) p.push(e.value);
      else Object.defineProperty(p, e.key, { value: e.value, enumerable: true, writable: true, configurable: true });
      return root;
    }
    parent = child;
  }
  if (parent !== null && typeof parent === 'object' && !Array.isArray(parent)) {
    Object.defineProperty(parent, e.key, { value: e.value, enumerable: true, writable: true, configurable: true });
  }
  return root;
}

/** Text edits: characters, whole lines, indentation, and YAML constructs dropped in anywhere. */
const textEdit = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('insert', 'delete', 'dupLine', 'dropLine', 'indent', 'swapLines', 'truncate'),
  data: fc.oneof(
    fc.constantFrom(':', ' ', '\t', '\n', '- ', '{', '}', '[', ']', '"', "'", '&a ', '*a', '!!str ', '!!binary ', '<<: *a\n', '---\n', '...\n', '? ', '|', '>', '#', '%YAML 1.1\n', '\u0000', '\ufeff', 'é', '\r\n'),
    fc.string({ maxLength: 6 }),
  ),
  n: fc.integer({ min: 1, max: 4 }),
});

function applyTextEdit(text: string, e: { at: number; kind: string; data: string; n: number }): string {
  const at = e.at % (text.length + 1);
  const lines = text.split('\n');
  const li = e.at % Math.max(1, lines.length);
  switch (e.kind) {
    case 'insert':
      return text.slice(0, at) + e.data + text.slice(at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + e.n);
    case 'dupLine':
      lines.splice(li, 0, lines[li] ?? '');
      return lines.join('\n');
    case 'dropLine':
      lines.splice(li, 1);
      return lines.join('\n');
    case 'indent':
      lines[li] = ' '.repeat(e.n) + (lines[li] ?? '');
      return lines.join('\n');
    case 'swapLines': {
      const lj = (li + e.n) % Math.max(1, lines.length);
      [lines[li], lines[lj]] = [lines[lj] ?? '', lines[li] ?? ''];
      return lines.join('\n');
    }
    default:
      return text.slice(0, at);
  }
}

function docArb(bases: readonly string[], parse: (t: string) => Json, names: readonly string[]): fc.Arbitrary<TextInput> {
  const structured = fc
    .record({
      base: fc.constantFrom(...bases),
      edits: fc.array(edit, { minLength: 0, maxLength: 4 }),
      style: fc.constantFrom('block', 'flow', 'json', 'json-as-yaml'),
      name: fc.constantFrom(...names),
    })
    .map(({ base, edits, style, name }) => {
      let doc = parse(base);
      for (const e of edits) doc = applyEdit(doc, e);
      const text = style === 'block' ? stringify(doc) : style === 'flow' ? stringify(doc, { collectionStyle: 'flow' }) : JSON.stringify(doc, null, style === 'json' ? 2 : 0);
      const fileName = style === 'json' ? name.replace(/\.ya?ml$/, '.json') : name;
      return { text, fileName };
    });
  const mutated = fc
    .record({ base: fc.constantFrom(...bases), edits: fc.array(textEdit, { minLength: 1, maxLength: 5 }), name: fc.constantFrom(...names) })
    .map(({ base, edits, name }) => ({ text: edits.reduce(applyTextEdit, base), fileName: name }));
  const raw = fc.record({ text: fc.string({ maxLength: 200, unit: 'binary' }), fileName: fc.constantFrom(...names) });
  return fc.oneof({ weight: 4, arbitrary: structured }, { weight: 4, arbitrary: mutated }, { weight: 1, arbitrary: raw });
}

/** Our own sample files as plain JSON values (they parse). */
const yamlParse = (t: string): Json => JSON.parse(JSON.stringify(parse(t) ?? null)) as Json;

const configBases = [
  sampleConfig,
  stringify({
    listen: ['127.0.0.1:0', '[::1]:0'],
    domains: ['sd.internal', 'svc.example'],
    maxUdpPayloadBytes: 4096,
    order: 'round-robin',
    maxAnswers: 8,
    nameserver: { name: 'ns1.sd.internal', ipv4: ['10.0.0.53'], ipv6: ['fd00::53'] },
    tcp: { idleTimeoutMs: 5000, maxConnections: 10 },
    workers: 'auto',
    backends: [
      { type: 'file', name: 'static', path: 'services.yaml' },
      { type: 'consul', address: 'http://127.0.0.1:8500' },
    ],
  }),
];

export const configText: fc.Arbitrary<TextInput> = docArb(configBases, yamlParse, ['svcdns.yaml', 'config.yml']);
/** Every instance shape the file format has, small enough that thousands of parses stay quick. */
const servicesBase = stringify({
  services: [
    { name: 'web', scope: 'prod', ttlSeconds: 30, tags: ['frontend'], instances: [{ address: '10.0.0.1', port: 8080, weight: 10, tags: ['primary'] }, { address: 'fd00::1', ports: { http: 80, grpc: 9090 }, healthy: false }] },
    { name: 'dns', instances: [{ address: '10.0.0.53', ports: [{ name: 'dns', port: 53, protocol: 'udp' }, { port: 53 }], check: { tcp: 53, intervalMs: 1000, timeoutMs: 500 } }] },
    { name: 'api', instances: [{ address: '10.0.1.1', port: 80, check: { http: 'http://10.0.1.1:80/health' } }] },
  ],
});

export const servicesText: fc.Arbitrary<TextInput> = docArb([sampleServices, servicesBase], yamlParse, ['services.yaml', 'services.json']);

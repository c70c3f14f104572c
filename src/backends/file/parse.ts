// backends/file/parse: services file text (YAML or JSON) → validated, canonical service definitions. Pure: no I/O.
//
// Every rejection is one BackendError('SVCDNS_BACKEND_BAD_DATA') whose message names the file, the line (when
// the YAML parser can give it), the key path (`services[1].instances[0].address`), the bad value and the rule
// (architecture rule 5), so an operator can fix the file from the log line alone.

import { isIP } from 'node:net';
import { LineCounter, isMap, isNode, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import { z } from 'zod';
import { canonicalAddress, instanceLabel } from '../../model/names.ts';
import type { Instance, Port } from '../../model/service.ts';
import { serviceKey } from '../../model/service.ts';
import { BackendError } from '../backend.ts';
import { labelSchema } from '../schema.ts';
import { aliasLine } from '../yaml-lines.ts';

export const CHECK_INTERVAL_MS = 10_000;
export const CHECK_TIMEOUT_MS = 2_000;

/** A health check of one instance (§6.1): TCP connect, or HTTP GET where 2xx/3xx is passing. */
export type CheckSpec =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly intervalMs: number; readonly timeoutMs: number }
  | { readonly kind: 'http'; readonly url: string; readonly intervalMs: number; readonly timeoutMs: number };

/**
 * One instance as written in the file (healthy or not), canonicalised: the served Instance (tags are service
 * tags then instance tags, de-duplicated, lowercase) plus what decides whether it is served.
 */
export interface InstanceDef extends Instance {
  /** `healthy: false` in the file: never served, never checked. */
  readonly healthy: boolean;
  readonly check: CheckSpec | null;
}

export interface ServiceDef {
  readonly name: string;
  readonly scope: string;
  readonly ttlSeconds: number | undefined;
  readonly instances: readonly InstanceDef[];
}

export interface ServicesFile {
  /** In file order; (scope, name) unique. */
  readonly services: readonly ServiceDef[];
}

// ---- schema (raw shapes as written) ----

const MAX_TTL_SECONDS = 2_147_483_647; // RFC 2181 §8: TTLs are 31-bit

const portNumber = z
  .number({ error: 'must be a port number' })
  .int({ error: 'must be an integer port number 1..65535' })
  .min(1, { error: 'must be a port number 1..65535' })
  .max(65_535, { error: 'must be a port number 1..65535' });

const address = z.string({ error: 'must be an IPv4 or IPv6 address (a string)' }).transform((s, ctx) => {
  const text = s.trim();
  // A zone id (fe80::1%eth0) names an interface of this host; it means nothing to a DNS client.
  const c = text.includes('%') ? null : canonicalAddress(text);
  if (c) return c;
  const hostname = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/i.test(text) && !/^[\d.]+$/.test(text);
  ctx.addIssue({
    code: 'custom',
    message: hostname
      ? 'is a hostname; static entries need an IPv4 or IPv6 address (svcdns does not resolve names)'
      : 'must be an IPv4 or IPv6 address',
  });
  return z.NEVER;
});

const portEntry = z.strictObject({
  name: labelSchema.optional(),
  port: portNumber,
  protocol: z.enum(['tcp', 'udp'], { error: 'must be "tcp" or "udp"' }).default('tcp'),
});

const portsSchema = z.union(
  [z.record(labelSchema, portNumber), z.array(portEntry, { error: 'must be a list' })],
  { error: 'must be a mapping of port name to port number, or a list of {name, port, protocol}' },
);

/** `tcp: 8080` (the instance's address) or `tcp: "10.0.0.9:8080"` / `"[fd00::9]:8080"` (IP literals only). */
const tcpTarget = z.union([portNumber, z.string()], { error: 'must be a port number or "ip:port"' }).transform((v, ctx) => {
  if (typeof v === 'number') return { host: null, port: v };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(v) ?? /^([^:[\]]+):(\d+)$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !isIP(m[1]!) || !(port >= 1 && port <= 65_535)) {
    ctx.addIssue({ code: 'custom', message: 'must be a port number or "ip:port" with an IP address' });
    return z.NEVER;
  }
  return { host: m[1]!, port };
});

const httpUrl = z.string({ error: 'must be a URL string' }).refine(
  (s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  },
  { error: 'must be an http:// or https:// URL' },
);

const checkSchema = z
  .strictObject({
    tcp: tcpTarget.optional(),
    http: httpUrl.optional(),
    intervalMs: z.number().int().min(100, { error: 'must be an integer 100..86400000 (ms)' }).max(86_400_000, {
      error: 'must be an integer 100..86400000 (ms)',
    }).default(CHECK_INTERVAL_MS),
    timeoutMs: z.number().int().min(10, { error: 'must be an integer 10..60000 (ms)' }).max(60_000, {
      error: 'must be an integer 10..60000 (ms)',
    }).default(CHECK_TIMEOUT_MS),
  })
  .superRefine((c, ctx) => {
    if ((c.tcp === undefined) === (c.http === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'must have exactly one of "tcp" or "http"' });
    }
  });

const tags = z.array(labelSchema, { error: 'must be a list of labels' }).default([]);

const instanceSchema = z
  .strictObject({
    address,
    /** The instance's name (§2.6): `<id>.N.service.D`; a host-name label, stored lowercase. */
    id: z
      .string({ error: 'must be a host-name label (letters, digits, inner "-"; at most 63 characters)' })
      .refine((s) => instanceLabel(s) !== null, { error: 'must be a host-name label (letters, digits, inner "-"; at most 63 characters)' })
      .transform((s) => s.toLowerCase())
      .optional(),
    port: portNumber.optional(),
    ports: portsSchema.optional(),
    weight: z
      .number({ error: 'must be an integer 1..65535' })
      .int({ error: 'must be an integer 1..65535' })
      .min(1, { error: 'must be an integer 1..65535' })
      .max(65_535, { error: 'must be an integer 1..65535' })
      .default(1),
    tags,
    healthy: z.boolean({ error: 'must be true or false' }).default(true),
    check: checkSchema.optional(),
  })
  .superRefine((inst, ctx) => {
    if (inst.port !== undefined && inst.ports !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['ports'], message: 'cannot be combined with "port" (use one)' });
    }
    if (Array.isArray(inst.ports)) {
      const names = new Map<string, number>();
      const nums = new Map<string, number>();
      inst.ports.forEach((p, i) => {
        if (p.name !== undefined) {
          const prev = names.get(p.name);
          if (prev !== undefined) {
            ctx.addIssue({ code: 'custom', path: ['ports', i, 'name'], message: `duplicates ports[${prev}].name` });
          } else names.set(p.name, i);
        }
        const sig = `${p.port}/${p.protocol}`;
        const prev = nums.get(sig);
        if (prev !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['ports', i, 'port'], message: `duplicates ports[${prev}] (${sig})` });
        } else nums.set(sig, i);
      });
    }
  });

const serviceSchema = z.strictObject({
  name: labelSchema,
  scope: labelSchema.optional(),
  ttlSeconds: z
    .number({ error: `must be an integer 0..${MAX_TTL_SECONDS} (seconds)` })
    .int({ error: `must be an integer 0..${MAX_TTL_SECONDS} (seconds)` })
    .min(0, { error: `must be an integer 0..${MAX_TTL_SECONDS} (seconds)` })
    .max(MAX_TTL_SECONDS, { error: `must be an integer 0..${MAX_TTL_SECONDS} (seconds)` })
    .optional(),
  tags,
  instances: z.array(instanceSchema, { error: 'must be a list of instances' }).default([]),
});

const fileSchema = z.strictObject(
  { services: z.array(serviceSchema, { error: 'must be a list of services' }) },
  { error: 'must be a mapping with a "services" list' },
);

type RawFile = z.output<typeof fileSchema>;

// ---- parsing ----

/**
 * Parse and validate a services file. `fileName` is only used in messages; `.json` selects JSON, anything
 * else YAML. Throws BackendError('SVCDNS_BACKEND_BAD_DATA') listing every problem found.
 */
export function parseServicesFile(text: string, fileName: string, defaultScope: string): ServicesFile {
  const json = fileName.toLowerCase().endsWith('.json');
  // Editors on Windows may save a UTF-8 BOM; JSON.parse rejects it, YAML ignores it.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let data: unknown;
  // JSON is YAML 1.2, so the YAML parser also gives JSON files line numbers (for syntax and validation errors).
  // For JSON it runs only when there is an error to place: on a 100k-instance file it costs seconds and
  // hundreds of MB that a valid file never needs.
  let yamlDoc: { doc: Document; lc: LineCounter } | null = null;
  const yaml = () => {
    if (yamlDoc === null) {
      const lc = new LineCounter();
      yamlDoc = { doc: parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true }), lc };
    }
    return yamlDoc;
  };
  if (json) {
    try {
      data = JSON.parse(text);
    } catch (err) {
      // Valid YAML that is not JSON (a comment, YAML in a .json file) has no YAML error to place it: find the line.
      const line = yaml().doc.errors[0]?.linePos?.[0]?.line ?? jsonErrorLine(text);
      const at = `line ${line}: `;
      throw badData(fileName, [`${at}invalid JSON: ${(err as Error).message}`], err);
    }
  } else {
    const { doc } = yaml();
    if (doc.errors.length > 0) {
      const msgs = doc.errors.map((e) => `invalid YAML: ${e.message.split('\n')[0]!.replace(/:$/, '')}`);
      throw badData(fileName, msgs, doc.errors[0]);
    }
    try {
      data = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // Not a syntax error (doc.errors is empty): an alias whose anchor is not set before it, or too many aliases.
      const line = aliasLine(doc, yaml().lc);
      throw badData(fileName, [`${line === undefined ? '' : `line ${line}: `}invalid YAML: ${(err as Error).message}`], err);
    }
  }
  if (data === null || data === undefined) {
    throw badData(fileName, ['is empty; expected a mapping with a "services" list (use "services: []" for none)']);
  }

  const parsed = fileSchema.safeParse(data);
  const problems: string[] = [];
  const lineOf = (path: readonly PropertyKey[], key?: string) => {
    const { doc, lc } = yaml();
    return json && doc.errors.length > 0 ? null : findLine(doc, lc, path, key);
  };
  if (!parsed.success) {
    for (const issue of parsed.error.issues) collect(issue, [], data, lineOf, problems);
    throw badData(fileName, problems, parsed.error);
  }

  const raw: RawFile = parsed.data;
  const seen = new Map<string, number>();
  const services: ServiceDef[] = raw.services.map((s, i) => {
    const scope = s.scope ?? defaultScope;
    const key = serviceKey(scope, s.name);
    const prev = seen.get(key);
    if (prev !== undefined) {
      problems.push(
        describe(['services', i, 'name'], s.name, `duplicates services[${prev}] in scope "${scope}" (list each service once; put all its instances under it)`, lineOf(['services', i, 'name'])),
      );
    } else seen.set(key, i);

    const instSeen = new Map<string, number>();
    const instances = s.instances.map((inst, j): InstanceDef => {
      const ports = toPorts(inst.port, inst.ports);
      const sig = `${inst.address.address}|${ports.map((p) => `${p.port}/${p.protocol}`).sort().join(',')}`;
      const prevInst = instSeen.get(sig);
      if (prevInst !== undefined) {
        const path = ['services', i, 'instances', j, 'address'];
        problems.push(describe(path, inst.address.address, `duplicates instances[${prevInst}] (same address and ports)`, lineOf(path)));
      } else instSeen.set(sig, j);
      if (inst.id !== undefined) {
        const prevId = instSeen.get(`id:${inst.id}`);
        const path = ['services', i, 'instances', j, 'id'];
        if (prevId !== undefined) problems.push(describe(path, inst.id, `duplicates instances[${prevId}].id`, lineOf(path)));
        else instSeen.set(`id:${inst.id}`, j);
      }
      return {
        ...(inst.id !== undefined ? { name: inst.id } : {}),
        address: inst.address.address,
        family: inst.address.family,
        ports,
        weight: inst.weight,
        tags: [...new Set([...s.tags, ...inst.tags])],
        healthy: inst.healthy,
        check: toCheck(inst.check, inst.address.address),
      };
    });
    return { name: s.name, scope, ttlSeconds: s.ttlSeconds, instances };
  });
  if (problems.length > 0) throw badData(fileName, problems);
  return { services };
}

function toPorts(port: number | undefined, ports: RawFile['services'][number]['instances'][number]['ports']): Port[] {
  if (port !== undefined) return [{ name: null, port, protocol: 'tcp' }];
  if (ports === undefined) return [];
  if (Array.isArray(ports)) return ports.map((p) => ({ name: p.name ?? null, port: p.port, protocol: p.protocol }));
  return Object.entries(ports).map(([name, p]) => ({ name, port: p, protocol: 'tcp' as const }));
}

function toCheck(c: RawFile['services'][number]['instances'][number]['check'], address: string): CheckSpec | null {
  if (!c) return null;
  if (c.tcp) return { kind: 'tcp', host: c.tcp.host ?? address, port: c.tcp.port, intervalMs: c.intervalMs, timeoutMs: c.timeoutMs };
  return { kind: 'http', url: c.http!, intervalMs: c.intervalMs, timeoutMs: c.timeoutMs };
}

// ---- messages ----

type LineOf = (path: readonly PropertyKey[], key?: string) => number | null;

interface Issue {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly expected?: string;
  readonly keys?: readonly string[];
  readonly errors?: readonly (readonly Issue[])[];
  readonly issues?: readonly Issue[];
}

const TYPE_WORDS: Record<string, string> = {
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
};

function collect(issue: Issue, base: readonly PropertyKey[], data: unknown, lineOf: LineOf, out: string[]): void {
  const path = [...base, ...issue.path];
  const value = valueAt(data, path);
  if (issue.code === 'unrecognized_keys') {
    for (const k of issue.keys ?? []) {
      out.push(describe([...path, k], undefined, 'is not a known key (check the spelling)', lineOf(path, k)));
    }
    return;
  }
  if (issue.code === 'invalid_key') {
    // A bad key of a mapping (a port name): the path ends with the key itself.
    const key = path[path.length - 1];
    const rule = issue.issues?.[0]?.message ?? issue.message;
    out.push(describe(path.slice(0, -1), key, `is not a valid key: ${rule}`, lineOf(path.slice(0, -1), typeof key === 'string' ? key : undefined)));
    return;
  }
  if (issue.code === 'invalid_union' && issue.errors) {
    // Report the branch that got past the type check (e.g. a list with one bad entry), if exactly one did.
    const deeper = issue.errors.filter((b) => !b.every((i) => i.path.length === 0 && i.code === 'invalid_type'));
    if (deeper.length === 1) {
      for (const i of deeper[0]!) collect(i, path, data, lineOf, out);
      return;
    }
  }
  let rule = issue.message;
  if (value === undefined && issue.code === 'invalid_type') rule = 'is required';
  else if (issue.code === 'invalid_type' && rule.startsWith('Invalid input')) {
    rule = `must be ${TYPE_WORDS[issue.expected ?? ''] ?? issue.expected}`;
  }
  out.push(describe(path, value, rule, lineOf(path)));
}

/** `line 12: services[1].instances[0].address: "10.0.0.300" must be an IPv4 or IPv6 address`. */
function describe(path: readonly PropertyKey[], value: unknown, rule: string, line: number | null): string {
  const where = `${line === undefined ? '' : `line ${line}: `}${formatPath(path) || '(top level)'}: `;
  return value === undefined || typeof value === 'object' ? `${where}${rule}` : `${where}${showValue(value)} ${rule}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else if (typeof p === 'string' && !/^[A-Za-z0-9_-]+$/.test(p)) s += `[${JSON.stringify(p)}]`;
    else s += s === '' ? String(p) : `.${String(p)}`;
  }
  return s;
}

function showValue(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = data;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

/** 1-based line of the node at `path` (or of key `key` inside the mapping at `path`); the nearest ancestor's when absent. */
function findLine(doc: Document, lc: LineCounter, path: readonly PropertyKey[], key?: string): number | null {
  const p = path.map((x) => (typeof x === 'symbol' ? String(x) : x));
  if (key !== undefined) {
    const map = doc.getIn(p, true);
    if (isMap(map)) {
      for (const pair of map.items) {
        if (isNode(pair.key) && (pair.key as unknown as { value: unknown }).value === key && pair.key.range) {
          return lc.linePos(pair.key.range[0]).line;
        }
      }
    }
  }
  for (let n = p.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(p.slice(0, n), true);
    if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
  }
  return null;
}

/**
 * 1-based line where JSON.parse fails on `text` (its "Unexpected token" messages carry no position): the end of
 * the shortest prefix that already fails for a reason other than ending early. Runs only for a bad file.
 */
function jsonErrorLine(text: string): number {
  const failsInside = (prefix: string): boolean => {
    try {
      JSON.parse(prefix);
      return false;
    } catch (err) {
      const m = /at position (\d+)/.exec((err as Error).message);
      return !(err as Error).message.includes('Unexpected end of JSON input') && (m === null || Number(m[1]) < prefix.length);
    }
  };
  let lo = 0;
  let hi = text.length;
  // The shortest failing prefix: failing inside is monotone in the prefix length (the parser reads left to right).
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (failsInside(text.slice(0, mid + 1))) hi = mid;
    else lo = mid + 1;
  }
  let line = 1;
  for (let i = 0; i < Math.min(lo, text.length - 1); i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function badData(fileName: string, problems: string[], cause?: unknown): BackendError {
  const shown = problems.slice(0, 10);
  const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
  return new BackendError(
    'SVCDNS_BACKEND_BAD_DATA',
    `${fileName}: ${shown.join('; ')}${more}`,
    { file: fileName, problems },
    cause,
  );
}

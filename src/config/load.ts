// config/load: file → environment → flags, validated once against the strict schema, frozen. Every error names
// the file (or variable/flag), the key path, the bad value and the rule (architecture rule 5).

import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';
import { aliasLine } from '../backends/yaml-lines.ts';

export interface ConfigIssue {
  /** e.g. `backends[0].path` */
  readonly path: string;
  readonly message: string;
  /** 1-based line in the file, when known. */
  readonly line?: number | undefined;
  /**
   * Where the bad value came from when it was not the file: a flag (`--listen`) or an environment variable
   * (`SVCDNS_LISTEN`). The message then names it instead of a file line: `--listen: nope: must be ...`.
   */
  readonly source?: string | undefined;
}

function issueLine(file: string, i: ConfigIssue): string {
  if (i.source !== undefined) return `${i.source}: ${i.message}`;
  return `${file}${i.line ? `:${i.line}` : ''}: ${i.path === '' ? '' : `${i.path}: `}${i.message}`;
}

/** Flag and environment problems first (they are not in the file), then the file's in line order. Stable. */
function byLine(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const rank = (i: ConfigIssue) => (i.source !== undefined ? -1 : (i.line ?? Number.MAX_SAFE_INTEGER));
  return issues.map((i, n) => ({ i, n })).sort((a, b) => rank(a.i) - rank(b.i) || a.n - b.n).map((x) => x.i);
}

/** A configuration that cannot be used. `code` is stable; tests assert it. */
export class ConfigError extends Error {
  readonly code = 'SVCDNS_CONFIG_INVALID';
  readonly file: string;
  readonly issues: readonly ConfigIssue[];
  constructor(file: string, issues: ConfigIssue[], cause?: unknown) {
    const sorted = byLine(issues);
    super(sorted.map((i) => issueLine(file, i)).join('\n'), cause === undefined ? undefined : { cause });
    this.name = 'ConfigError';
    this.file = file;
    this.issues = sorted;
  }
}

/** Overrides from the environment and the command line, applied over the file (in that order). */
export interface ConfigOverrides {
  listen?: string[] | undefined;
  logLevel?: string | undefined;
  /** `admin.listen` ("host:port"), or "off" to disable the admin server (flag --admin-listen, env SVCDNS_ADMIN_LISTEN). */
  adminListen?: string | undefined;
  /**
   * Where each override came from, as messages should name it: `--listen` or `SVCDNS_LISTEN`, ... (cli.ts).
   * Absent: "--listen", "--log-level", "--admin-listen".
   */
  sources?: { readonly listen?: string; readonly logLevel?: string; readonly adminListen?: string } | undefined;
}

/** Locates issues in values that came from flags or the environment rather than the file (see ConfigIssue.source). */
interface OverrideOrigin {
  /** The flag or variable, and the value as given (one per `listen` address). */
  readonly sourceOf: (path: readonly PropertyKey[]) => { readonly source: string; readonly value: string } | undefined;
}

function overrideOrigin(o: ConfigOverrides): OverrideOrigin {
  return {
    sourceOf(path) {
      const [top, sub] = path;
      if (top === 'listen' && o.listen !== undefined) {
        const source = o.sources?.listen ?? '--listen';
        return { source, value: typeof sub === 'number' ? (o.listen[sub] ?? '') : o.listen.join(',') };
      }
      if (top === 'log' && sub === 'level' && o.logLevel !== undefined) return { source: o.sources?.logLevel ?? '--log-level', value: o.logLevel };
      if (top === 'admin' && o.adminListen !== undefined && (sub === 'listen' || sub === 'enabled')) {
        return { source: o.sources?.adminListen ?? '--admin-listen', value: o.adminListen };
      }
      return undefined;
    },
  };
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions), case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) => [i, ...new Array<number>(t.length).fill(0)]);
  for (let j = 0; j <= t.length; j++) d[0]![j] = j;
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[s.length]![t.length]!;
}

/** Unit suffixes the schema's keys carry (architecture rule 5): `ttl` means `ttlSeconds`, `idleTimeout` `idleTimeoutMs`. */
const UNIT_SUFFIX = /(Seconds|Ms|Bytes)$/;

/**
 * The known key closest to `key` by edit distance, compared with each known key as written, without its unit
 * suffix, and as a prefix; undefined when none is close (more than a third of the longer name differs, at least 1 allowed).
 */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    // A known key that begins with the unknown one (`maxConn` for `maxConnections`) counts as one edit away.
    const prefix = key.length >= 3 && k.toLowerCase().startsWith(key.toLowerCase()) ? 1 : Infinity;
    const d = Math.min(prefix, editDistance(key, k), editDistance(key, k.replace(UNIT_SUFFIX, '')));
    const limit = Math.max(1, Math.floor(Math.max(key.length, k.replace(UNIT_SUFFIX, '').length) / 3));
    if (d <= limit && d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

/** Zod's definition of a schema node (zod/v4 core: `_zod.def`), as far as walking object shapes needs it. */
interface ZodDef {
  readonly type: string;
  readonly innerType?: ZodNode;
  readonly in?: ZodNode;
  readonly out?: ZodNode;
  readonly shape?: Readonly<Record<string, ZodNode>>;
  readonly element?: ZodNode;
  readonly options?: readonly ZodNode[];
  readonly values?: readonly unknown[];
  readonly getter?: () => ZodNode;
}
interface ZodNode {
  readonly _zod: { readonly def: ZodDef };
}

/** Strip wrappers (default, optional, preprocess/transform pipes, lazy) down to the schema that checks the value. */
function unwrapSchema(node: ZodNode): ZodNode {
  for (let n = 0; n < 64; n++) {
    const d = node._zod.def;
    if (d.innerType !== undefined) node = d.innerType;
    else if (d.type === 'pipe' && d.in !== undefined && d.out !== undefined) node = d.in._zod.def.type === 'transform' ? d.out : d.in;
    else if (d.type === 'lazy' && d.getter !== undefined) node = d.getter();
    else return node;
  }
  return node;
}

/** The object schema that validates the value at `path` of `raw` (a union picks the option its `type` selects). */
function objectSchemaAt(schema: ZodNode, raw: unknown, path: readonly PropertyKey[]): ZodNode | undefined {
  let node = unwrapSchema(schema);
  let value = raw;
  for (let i = 0; ; ) {
    const d = node._zod.def;
    if (d.type === 'union' && d.options !== undefined) {
      const objs = d.options.map(unwrapSchema).filter((o) => o._zod.def.type === 'object');
      const tag = value !== null && typeof value === 'object' ? (value as Record<string, unknown>).type : undefined;
      const pick = objs.find((o) => {
        const t = o._zod.def.shape?.type;
        return t !== undefined && (unwrapSchema(t)._zod.def.values ?? []).includes(tag);
      });
      if (pick === undefined) return undefined;
      node = pick;
      continue;
    }
    if (i === path.length) return d.type === 'object' ? node : undefined;
    const p = path[i]!;
    if (d.type === 'object' && typeof p === 'string' && d.shape?.[p] !== undefined) node = unwrapSchema(d.shape[p]);
    else if (d.type === 'array' && typeof p === 'number' && d.element !== undefined) node = unwrapSchema(d.element);
    else return undefined;
    value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[p] : undefined;
    i++;
  }
}

/** The keys the schema allows at `path` (for did-you-mean hints); empty when it cannot tell. */
export function knownKeysAt(schema: unknown, raw: unknown, path: readonly PropertyKey[]): string[] {
  const node = objectSchemaAt(schema as ZodNode, raw, path);
  return node === undefined ? [] : Object.keys(node._zod.def.shape ?? {});
}

/** `backends[0].path`; a key that is not a plain name (`""`, `a b`, `1`) is quoted: `tcp[""]`, so none is invisible. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && !/^[A-Za-z_$][\w$-]*$/.test(p)) out += `[${JSON.stringify(p)}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Turn zod issues into messages with the bad value and the rule. `schema` supplies the keys that did-you-mean
 * hints choose from; `origin` marks the values that came from flags or the environment.
 */
export function describeIssues(
  error: z.ZodError,
  raw: unknown,
  lineOf?: (path: readonly PropertyKey[]) => number | undefined,
  schema: unknown = configSchema,
  origin?: OverrideOrigin,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    let path = issue.path as PropertyKey[];
    // `listen: "a:1"` is shorthand for a one-element list: report it at `listen`, not `listen[0]`.
    if (path.length > 0 && path[path.length - 1] === 0 && typeof valueAt(raw, path.slice(0, -1)) === 'string') {
      path = path.slice(0, -1);
    }
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, raw, path);
      for (const key of issue.keys) {
        const near = closestKey(key, known);
        const hint = near !== undefined ? ` (did you mean "${near}"?)` : '';
        out.push({ path: formatPath([...path, key]), message: `unknown key${hint}`, line: lineOf?.([...path, key]) });
      }
      continue;
    }
    const rule = issue.message;
    const from = origin?.sourceOf(issue.path as PropertyKey[]);
    if (from !== undefined) {
      out.push({ path: formatPath(path), message: `${from.value}: ${rule}`, source: from.source });
      continue;
    }
    const value = valueAt(raw, path);
    const msg = value === undefined && issue.code === 'invalid_type' ? `is required: ${rule}` : `${show(value)}: ${rule}`;
    out.push({ path: formatPath(path), message: msg, line: lineOf?.(path) });
  }
  return out;
}

/** Validate an already-parsed config object. `file` names the source in errors. */
export function validateConfig(raw: unknown, file: string, lineOf?: (path: readonly PropertyKey[]) => number | undefined, overrides?: ConfigOverrides): Config {
  const r = configSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(file, describeIssues(r.error, raw, lineOf, configSchema, overrides && overrideOrigin(overrides)));
  return deepFreeze(r.data);
}

/** Parse YAML (or JSON, a subset) config text. */
export function parseConfigText(text: string, file: string, overrides: ConfigOverrides = {}): Config {
  return parseConfigLocated(text, file, overrides).config;
}

/** 1-based line of the config key at `path` (or of its nearest ancestor), when known. */
export type LineOf = (path: readonly PropertyKey[]) => number | undefined;

/** A validated config and where each of its keys is written (for messages about keys found bad later). */
export interface LocatedConfig {
  readonly config: Config;
  readonly lineOf: LineOf;
}

/** parseConfigText, keeping the line lookup (check-config names the line of a backend key that fails its check). */
export function parseConfigLocated(text: string, file: string, overrides: ConfigOverrides = {}): LocatedConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({ path: '', message: `not valid YAML: ${e.message.split('\n')[0]}`, line: lines.linePos(e.pos[0]).line })),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    // Not a syntax error (doc.errors is empty): an alias whose anchor is not set before it, or too many aliases.
    throw new ConfigError(file, [{ path: '', message: `not valid YAML: ${(err as Error).message}`, line: aliasLine(doc, lines) }], err);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [{ path: '', message: 'must be a mapping of keys (see config/svcdns.yaml)' }]);
  }
  const obj = raw as Record<string, unknown>;
  if (overrides.listen !== undefined) obj.listen = overrides.listen;
  if (overrides.logLevel !== undefined) obj.log = { ...((obj.log as object) ?? {}), level: overrides.logLevel };
  if (overrides.adminListen !== undefined) {
    const admin = (obj.admin as object) ?? {};
    obj.admin = overrides.adminListen === 'off' ? { ...admin, enabled: false } : { ...admin, listen: overrides.adminListen };
  }
  const lineOf = (path: readonly PropertyKey[]) => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
      if (node && node.range) return lines.linePos(node.range[0]).line;
      // For a missing/unknown key, point at the pair's key when the parent is a map.
      const parent = doc.getIn(path.slice(0, n - 1) as unknown[], true) as { items?: { key: { value?: unknown; range?: [number, number, number] } }[] } | undefined;
      const key = path[n - 1];
      const item = parent?.items?.find((i) => i.key && i.key.value === key);
      if (item?.key.range) return lines.linePos(item.key.range[0]).line;
    }
    return undefined;
  };
  return { config: validateConfig(obj, file, lineOf, overrides), lineOf };
}

export function loadConfigFile(file: string, overrides: ConfigOverrides = {}): Config {
  return loadConfigLocated(file, overrides).config;
}

/** loadConfigFile, keeping the line lookup. */
export function loadConfigLocated(file: string, overrides: ConfigOverrides = {}): LocatedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(file, [{ path: '', message: `cannot read the file (${e.code ?? e.message})` }], err);
  }
  return parseConfigLocated(text, file, overrides);
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

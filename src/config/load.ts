// config/load: file → environment → flags, validated once against the strict schema, frozen. Every error names
// the file (or variable/flag), the key path, the bad value and the rule (architecture rule 5).

import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.ts';

export interface ConfigIssue {
  /** e.g. `backends[0].path` */
  readonly path: string;
  readonly message: string;
  /** 1-based line in the file, when known. */
  readonly line?: number | undefined;
}

/** A configuration that cannot be used. `code` is stable; tests assert it. */
export class ConfigError extends Error {
  readonly code = 'SVCDNS_CONFIG_INVALID';
  readonly file: string;
  readonly issues: readonly ConfigIssue[];
  constructor(file: string, issues: ConfigIssue[], cause?: unknown) {
    super(
      issues
        .map((i) => `${file}${i.line ? `:${i.line}` : ''}: ${i.path === '' ? '' : `${i.path}: `}${i.message}`)
        .join('\n'),
      cause === undefined ? undefined : { cause },
    );
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

/** Overrides from the environment and the command line, applied over the file (in that order). */
export interface ConfigOverrides {
  listen?: string[] | undefined;
  logLevel?: string | undefined;
  /** `admin.listen` ("host:port"), or "off" to disable the admin server (flag --admin-listen, env SVCDNS_ADMIN_LISTEN). */
  adminListen?: string | undefined;
}

/** Keys people write from habit (Consul/CoreDNS, or this project's docs' prose), and what we call them. */
const RENAMED: Readonly<Record<string, string>> = {
  ttl: 'ttlSeconds',
  negativeTtl: 'negativeTtlSeconds',
  maxUdpPayload: 'maxUdpPayloadBytes',
  domain: 'domains',
  backend: 'backends',
};

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
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

/** Turn zod issues into messages with the bad value and the rule. */
export function describeIssues(error: z.ZodError, raw: unknown, lineOf?: (path: readonly PropertyKey[]) => number | undefined): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    let path = issue.path as PropertyKey[];
    // `listen: "a:1"` is shorthand for a one-element list: report it at `listen`, not `listen[0]`.
    if (path.length > 0 && path[path.length - 1] === 0 && typeof valueAt(raw, path.slice(0, -1)) === 'string') {
      path = path.slice(0, -1);
    }
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const hint = RENAMED[key] ? ` (did you mean "${RENAMED[key]}"?)` : '';
        out.push({ path: formatPath([...path, key]), message: `unknown key${hint}`, line: lineOf?.([...path, key]) });
      }
      continue;
    }
    const value = valueAt(raw, path);
    const rule = issue.message;
    const msg = value === undefined && issue.code === 'invalid_type' ? `is required: ${rule}` : `${show(value)}: ${rule}`;
    out.push({ path: formatPath(path), message: msg, line: lineOf?.(path) });
  }
  return out;
}

/** Validate an already-parsed config object. `file` names the source in errors. */
export function validateConfig(raw: unknown, file: string, lineOf?: (path: readonly PropertyKey[]) => number | undefined): Config {
  const r = configSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(file, describeIssues(r.error, raw, lineOf));
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
  const raw = doc.toJS() as unknown;
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
  return { config: validateConfig(obj, file, lineOf), lineOf };
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

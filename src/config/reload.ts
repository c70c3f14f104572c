// config/reload: what a config reload changes — a pure diff of the running config against a new, already
// validated one. The app applies it (app.ts `reload`): backends are matched by name and kept when their config is
// deep-equal; answer options rebuild the query processor; keys that need new sockets are reported, not applied.

import { isDeepStrictEqual } from 'node:util';
import type { BackendConfig, Config } from './schema.ts';

/** Stable codes of a reload that was refused or failed after validation (tests assert these). */
export type ReloadErrorCode =
  | 'SVCDNS_RELOAD_STOPPING' // the process is shutting down
  | 'SVCDNS_RELOAD_FIRST_SYNC_FAILED' // a new backend instance reported an error before its first snapshot
  | 'SVCDNS_RELOAD_FIRST_SYNC_TIMEOUT'; // ... or no snapshot within reload.firstSyncTimeoutMs

export class ReloadError extends Error {
  readonly code: ReloadErrorCode;
  /** The backends concerned (by name). */
  readonly backends: readonly string[];
  constructor(code: ReloadErrorCode, message: string, backends: readonly string[] = [], cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ReloadError';
    this.code = code;
    this.backends = backends;
  }
}

export interface ReloadPlan {
  /** Backends whose config did not change: they keep running, their data keeps being served. */
  readonly keep: readonly string[];
  /** Present in both configs with a different entry: re-created, and swapped in once the new one synced. */
  readonly change: readonly BackendConfig[];
  readonly add: readonly BackendConfig[];
  readonly remove: readonly string[];
  /** Any key the Answerer or QueryProcessor reads changed: both are rebuilt (the answer cache starts empty). */
  readonly answerChanged: boolean;
  readonly logLevelChanged: boolean;
  readonly queryLogChanged: boolean;
  /** `acl` or `rateLimit` changed: the listeners take the new ones from the next message on. */
  readonly guardChanged: boolean;
  /** Top-level keys that changed but only take effect after a restart (new listening sockets). */
  readonly restartRequired: readonly string[];
}

/** Keys read by the Answerer and the QueryProcessor. */
export const ANSWER_KEYS = [
  'domains',
  'ttlSeconds',
  'negativeTtlSeconds',
  'maxUdpPayloadBytes',
  'order',
  'maxAnswers',
  'emptyService',
  'nameserver',
  'srvTarget',
  'reverseZones',
] as const satisfies readonly (keyof Config)[];

/** Keys that bind sockets: changing them needs a restart. */
export const RESTART_KEYS = ['listen', 'tcp', 'admin', 'workers', 'cache'] as const satisfies readonly (keyof Config)[];

export function backendName(b: BackendConfig): string {
  return b.name ?? b.type;
}

export function planReload(current: Config, next: Config): ReloadPlan {
  const before = new Map(current.backends.map((b) => [backendName(b), b]));
  const after = new Map(next.backends.map((b) => [backendName(b), b]));
  const keep: string[] = [];
  const change: BackendConfig[] = [];
  const add: BackendConfig[] = [];
  const remove: string[] = [];
  for (const [name, b] of after) {
    const old = before.get(name);
    if (!old) add.push(b);
    else if (isDeepStrictEqual(old, b)) keep.push(name);
    else change.push(b);
  }
  for (const name of before.keys()) if (!after.has(name)) remove.push(name);
  return {
    keep,
    change,
    add,
    remove,
    answerChanged: ANSWER_KEYS.some((k) => !isDeepStrictEqual(current[k], next[k])),
    logLevelChanged: current.log.level !== next.log.level,
    queryLogChanged: !isDeepStrictEqual(current.queryLog, next.queryLog),
    guardChanged: !isDeepStrictEqual(current.acl, next.acl) || !isDeepStrictEqual(current.rateLimit, next.rateLimit),
    restartRequired: RESTART_KEYS.filter((k) => !isDeepStrictEqual(current[k], next[k])),
  };
}

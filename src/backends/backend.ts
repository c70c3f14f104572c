// backends/backend: the contract every backend implements, and the typed error it reports.
//
// A backend watches one source (file, Consul, Kubernetes) and hands its sink the *whole* healthy view each
// time it changes (grpc-js resolver style: one success-or-error value, never deltas). It never touches DNS
// wire format and never learns who reads the store.

import type { Logger } from 'pino';
import type { ScopeClaim, ServiceSnapshot } from '../model/service.ts';

/** Stable error codes (undici style): tests assert these, not messages. */
export type BackendErrorCode =
  | 'SVCDNS_BACKEND_UNREACHABLE' // connection refused, reset, DNS failure of the API host
  | 'SVCDNS_BACKEND_TIMEOUT' // a request hung past its bound
  | 'SVCDNS_BACKEND_FORBIDDEN' // 401/403: token or RBAC
  | 'SVCDNS_BACKEND_HTTP' // any other unexpected HTTP status
  | 'SVCDNS_BACKEND_BAD_DATA' // the source answered something we cannot use (invalid file, bad JSON)
  | 'SVCDNS_BACKEND_CONFIG'; // backend configuration that only fails when used (missing CA file, ...)

export class BackendError extends Error {
  readonly code: BackendErrorCode;
  /** Extra context for logs and /readyz (endpoint, status, file, path...). */
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: BackendErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'BackendError';
    this.code = code;
    this.details = details;
  }
}

/**
 * A problem found in a backend's config before it runs: by `svcdns check-config` (every check startup would
 * make, file reads included) and, for the permanent ones, at startup, which then exits 2 instead of serving
 * SERVFAIL for ever.
 */
export interface BackendProblem {
  readonly code: BackendErrorCode;
  /** What is wrong: the rule, or what failed and why. */
  readonly message: string;
  /** The key of the backend's config entry it is about (`path`, `address`); absent: the entry as a whole. */
  readonly key?: string;
  /** `message` already starts with its own `file:line:` (a services file); print it as it is. */
  readonly located?: boolean;
  /**
   * Only a config change and a restart can fix it (an address that cannot parse, no Kubernetes API source).
   * A problem that is not permanent is retried by the running backend (a file that may appear or be fixed later).
   */
  readonly permanent: boolean;
}

/** What a backend's check gets: where relative paths start, and the environment. */
export interface BackendCheckContext {
  readonly configDir: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** false: only the checks without I/O whose failure is permanent (startup); true: everything (check-config). */
  readonly full: boolean;
}

/** Where a backend reports. Calls are cheap and synchronous; the store swaps in the snapshot before returning. */
export interface BackendSink {
  /**
   * A complete healthy view of this backend's source. The first call marks the backend synced (§5.4).
   * `receivedAtMs`: when the event behind it reached the backend (watch event, blocking query return, file change
   * notification), on receiptClock(); absent: now. The end-to-end propagation histogram starts there (issue 14 #4).
   */
  snapshot(snapshot: ServiceSnapshot, receivedAtMs?: number): void;
  /**
   * The source failed (the backend keeps retrying by itself with backoff). Served data is kept as is (§6.3);
   * the backend is marked stale until its next snapshot. Report each failure; the supervisor logs only
   * state changes, so repeated identical errors do not flood the log.
   */
  error(err: BackendError): void;
}

/**
 * The clock of propagation timing (epoch ms with sub-millisecond precision): the same in every thread, and not the
 * injected wall clock tests may freeze, so a receipt stamped by a backend compares with the moment an answer is served.
 */
export function receiptClock(): number {
  return performance.timeOrigin + performance.now();
}

/** What a backend factory gets from the composition root (architecture rule 6: nothing global). */
export interface BackendContext {
  /** Child logger with `backend: <name>` bound. */
  readonly logger: Logger;
  /** Directory of the config file, for resolving relative paths in backend config. */
  readonly configDir: string;
  /** Environment (injected so tests do not mutate process.env). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The backend's own metrics, labelled `backend: <name>` (absent in unit tests and check-config: count nothing). */
  readonly metrics?: BackendMetrics;
}

/**
 * How a backend exports metrics of its own (`svcdns_<type>_*`, e.g. `svcdns_consul_watches_queued`) without
 * seeing the registry: observability/metrics.ts implements it per backend. Names are snake_case; counters end in
 * `_total`, times are in seconds.
 */
export interface BackendMetrics {
  /** A gauge read at scrape time; `read` returning null leaves the series out (nothing to report yet). */
  gauge(name: string, help: string, read: () => number | null): void;
  /** A counter; returns the function that adds to it (1 by default). */
  counter(name: string, help: string): (n?: number) => void;
}

export interface Backend {
  /** Unique name from config (`backends[].name`, default: the type). */
  readonly name: string;
  readonly type: string;
  /**
   * Whether a name in `scope` (null = unscoped `N.service.D`) could be answered by this backend. Used before
   * the first sync to answer SERVFAIL rather than NXDOMAIN (§5.4). Same answer as scopeClaim().
   */
  ownsScope(scope: string | null): boolean;
  /**
   * The scopes this backend could own, as data: the store answers §5.4 from it, and it is what worker replicas
   * receive. May change while syncing (Consul learns its agent's datacenter); it is read again after every report.
   */
  scopeClaim(): ScopeClaim;
  /** Begin watching; report through `sink`. Must not throw: failures go to sink.error. */
  start(sink: BackendSink): void;
  /** Stop all watches, timers and sockets. Idempotent. */
  stop(): Promise<void>;
}

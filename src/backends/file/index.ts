// backends/file: the static-file backend (`type: file`) — serves services listed in a YAML/JSON file, hot-reloaded.
//
// Watches: the file's DIRECTORY with fs.watch (editors and `kubectl`-mounted ConfigMaps replace files by rename,
// which a watch on the file itself would lose), filtered to the file's name and to `..*` entries (the Kubernetes
// atomic-writer swaps a `..data` symlink), debounced by `debounceMs`. Content identical to the last read is
// ignored. A valid edit becomes a new full snapshot that reuses the previous Service object of every service
// whose served content did not change (the store remerges only what changed). An invalid edit, or a vanished
// file, is reported with sink.error and the previous data keeps being served (§6.3).
// Slow writers (issue 10 #14): a file rewritten in place can be read while half-written, and its valid first part
// would be served. So an in-place edit (same inode as the file last applied) that removes services
// waits for `removalDebounceMs` more of quiet before it is applied; any change event restarts that wait. A file
// replaced by rename (a new inode: the atomic write the README asks for, editors, ConfigMaps) is complete, so its
// removals apply at once; additions and other changes always apply after `debounceMs`.
// Health (§6.1): `healthy: false` entries are never served; entries with a `check` are served only while their
// last TCP/HTTP probe passed (checks.ts). Check result changes re-emit a snapshot.
// Large files (issue 11 items 4, 7): each load reads, parses and validates the file in a child process
// (load-worker.ts), so DNS and the admin server keep answering during the seconds a 10k-service file takes, and
// the parse's garbage goes away with that process. A file over `maxFileBytes` is not read; a parse that needs
// more than `parseHeapMb` ends the child; both are reported (file, limit, size) and the previous data stays (§6.3).
// Config: `{ type: file, name?, path, defaultScope = "default", debounceMs = 100, removalDebounceMs = 5000,
// maxFileBytes = 16 MiB, parseHeapMb = 2048 }`; `path` is relative to the config file's directory.
// Readiness (§5.4): synced at the first valid load; before that (file missing or invalid) names answer SERVFAIL.
// The first snapshot waits for the first result of each check (each bounded by its timeoutMs); later loads
// never wait for checks. Metrics: none of its own; the supervisor/store expose sync state and counts.

import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { claimOwns, type Instance, type ScopeClaim, type Service, type ServiceSnapshot, type UnhealthyInstance } from '../../model/service.ts';
import { serviceKey, sortUnhealthy } from '../../model/service.ts';
import type { Backend, BackendCheckContext, BackendContext, BackendProblem, BackendSink } from '../backend.ts';
import { BackendError, receiptClock } from '../backend.ts';
import { Backoff } from '../backoff.ts';
import { backendNameSchema, labelSchema } from '../schema.ts';
import { Checker, checkKey } from './checks.ts';
import { loadInWorker, type RunningLoad } from './load-worker.ts';
import { parseServicesFile } from './parse.ts';
import type { InstanceDef, ServiceDef, ServicesFile } from './parse.ts';
import type { SignedDef } from './parse-worker.ts';

export { parseServicesFile } from './parse.ts';
export type { CheckSpec, InstanceDef, ServiceDef, ServicesFile } from './parse.ts';

export const DEFAULT_DEBOUNCE_MS = 100;

// Why a listed instance is not served (Service.unhealthy, the status page). Constants, never a probe's message
// (`connect failed: ECONNREFUSED`, `timed out after 2000 ms`), so one state is one string however many instances.
export const REASON_HEALTHY_FALSE = 'healthy: false';
export const REASON_CHECK_PENDING = 'check pending (no result yet)';
export const REASON_TCP_CHECK_CRITICAL = 'tcp check critical';
export const REASON_HTTP_CHECK_CRITICAL = 'http check critical';
/** Extra quiet time before an in-place edit that removes services is applied (ms). */
export const DEFAULT_REMOVAL_DEBOUNCE_MS = 5000;
/** Largest services file read (bytes): 10k services × 10 instances is 5-13 MB, in YAML or JSON. */
export const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;
/** Heap limit of the process that parses the file (MB): a 10k × 10 YAML file needs about 1.2 GB while parsed. */
export const DEFAULT_PARSE_HEAP_MB = 2048;

export const configSchema = z.strictObject({
  type: z.literal('file'),
  name: backendNameSchema,
  /** Services file; relative paths are resolved against the config file's directory. `.json` → JSON, else YAML. */
  path: z.string().min(1, { error: 'must be a file path' }),
  /** Scope of services that declare none; its services also answer unscoped names (§2.1). */
  defaultScope: labelSchema.default('default'),
  /** Quiet time after the last change event before reading the file (editors write in several steps). */
  debounceMs: z.number().int().min(0).max(60_000).default(DEFAULT_DEBOUNCE_MS),
  /**
   * Quiet time before an edit made in place (not by rename) that removes services is applied: the
   * writer may have paused mid-file, and what it wrote so far parses. 0 applies such edits like any other.
   */
  removalDebounceMs: z.number().int().min(0).max(600_000).default(DEFAULT_REMOVAL_DEBOUNCE_MS),
  /** A bigger services file is not read: it is reported (file, limit, size) and the previous data stays served. */
  maxFileBytes: z.number().int().min(1).max(1024 * 1024 * 1024).default(DEFAULT_MAX_FILE_BYTES),
  /** Heap limit of the parser process: a file that needs more is reported and the previous data stays served. */
  parseHeapMb: z.number().int().min(16).max(65_536).default(DEFAULT_PARSE_HEAP_MB),
});

export type FileBackendConfig = z.output<typeof configSchema>;

export function create(config: FileBackendConfig, ctx: BackendContext): Backend {
  return new FileBackend(config, ctx);
}

/** How a services file is named in messages: relative to the working directory when below it. */
function displayPath(abs: string): string {
  const rel = path.relative(process.cwd(), abs);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
}

/**
 * check-config: the services file exists and is valid, as the first load would find it. Never permanent at
 * startup: the file is watched, so one created or fixed later is loaded (names answer SERVFAIL until then).
 */
export async function check(config: FileBackendConfig, ctx: BackendCheckContext): Promise<BackendProblem[]> {
  if (!ctx.full) return [];
  const abs = path.resolve(ctx.configDir, config.path);
  let text: string;
  try {
    const size = (await stat(abs)).size;
    if (size > config.maxFileBytes) {
      return [{ code: 'SVCDNS_BACKEND_BAD_DATA', key: 'path', message: tooBigMessage(displayPath(abs), size, config.maxFileBytes), permanent: false }];
    }
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return [{ code: 'SVCDNS_BACKEND_CONFIG', key: 'path', message: `cannot read ${abs} (${e.code ?? e.message})`, permanent: false }];
  }
  return servicesFileProblems(text, displayPath(abs), config.defaultScope);
}

/**
 * Every problem of a services file's text, one per entry, each as `file:line: key.path: value rule` (what
 * `svcdns check-config --services FILE` prints). Empty when the file is valid.
 */
export function servicesFileProblems(text: string, display: string, defaultScope: string): BackendProblem[] {
  try {
    parseServicesFile(text, display, defaultScope);
    return [];
  } catch (err) {
    const e = err instanceof BackendError ? err : new BackendError('SVCDNS_BACKEND_BAD_DATA', String(err));
    const problems = Array.isArray(e.details['problems']) ? (e.details['problems'] as string[]) : [e.message.replace(`${display}: `, '')];
    return problems.map((p) => {
      const m = /^line (\d+): (.*)$/s.exec(p);
      return { code: e.code, located: true, permanent: false, message: m ? `${display}:${m[1]}: ${m[2]}` : `${display}: ${p}` };
    });
  }
}

/** The size-limit message: the file, its size and the limit, and what to change. */
function tooBigMessage(display: string, size: number, limit: number): string {
  return `${display}: is ${size} bytes, over the limit of ${limit} bytes (maxFileBytes); not loaded (raise maxFileBytes in this backend's config, or split the file across several file backends)`;
}

/**
 * Services handled per event-loop turn by the passes after a load (merging the parser's reply, the backend's
 * tables, the snapshot): a reload of a 10k-service file is ~10 turns of a few ms each instead of one turn of
 * 40-110 ms, so DNS answers between them (issue 11 item 7). Counted, not timed: the same on any machine.
 */
export const FILE_STEP = 1000;

/** One turn of the event loop: I/O (DNS packets) queued meanwhile is handled before the next step. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** One service of the served file. */
interface Entry extends SignedDef {
  readonly def: ServiceDef;
}

interface Published {
  /** Served content signature, to decide whether the Service object can be reused. */
  readonly sig: string;
  readonly service: Service;
}

class FileBackend implements Backend {
  readonly name: string;
  readonly type = 'file';
  readonly #config: FileBackendConfig;
  readonly #logger: BackendContext['logger'];
  readonly #absPath: string;
  readonly #dir: string;
  readonly #base: string;
  /** How the file is named in messages: relative to the working directory when below it. */
  readonly #display: string;
  readonly #backoff = new Backoff();

  #sink: BackendSink | null = null;
  #watcher: FSWatcher | null = null;
  #debounceTimer: NodeJS.Timeout | null = null;
  /** Pending re-read of an in-place edit that removes services (see the header): fires after removalDebounceMs of quiet. */
  #removalTimer: NodeJS.Timeout | null = null;
  /** Device and inode of the file whose content is served: the same inode again means an edit in place. */
  #servedInode: string | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  /** Serialises loads so two reads never race; each load reads the file afresh. */
  #chain: Promise<void> = Promise.resolve();
  /** The load whose child process is running now (stop() ends it). */
  #running: RunningLoad | null = null;
  #stopped = false;
  /** When the first change notification since the last snapshot arrived (receiptClock): propagation, issue 14 #4. */
  #notifiedAtMs: number | null = null;

  /** Content hash of the last read (valid or not); null after a read failure. */
  #lastHash: string | null = null;
  /** A valid file was applied: #entries is what is served (through the checks). */
  #loaded = false;
  /** Each service of the last valid file (file order), with its key and signature as the parser process computed them. */
  #entries: readonly Entry[] = [];
  /** #entries by key; `known` (key and sig of each) is what the next load is told the backend already holds. */
  #byKey = new Map<string, Entry>();
  #known = '';
  /** Why the file on disk is not being served right now; null when it parsed. */
  #fileError: BackendError | null = null;
  #lastLoggedError: string | null = null;
  readonly #checkers = new Map<string, Checker>();
  #published = new Map<string, Published>();
  /** A snapshot pass runs (#publishLoop); `#publishAgain`: something changed meanwhile, run one more. */
  #publishing: Promise<void> | null = null;
  #publishAgain = false;
  /** Snapshot passes started, and turns they yielded (tests: a large reload never runs as one turn). */
  readonly passes = { publish: 0, turns: 0 };
  #synced = false;
  /** sink.error was called after the last snapshot: the next snapshot must go out even if nothing changed. */
  #staleReported = false;

  constructor(config: FileBackendConfig, ctx: BackendContext) {
    this.name = config.name ?? 'file';
    this.#config = config;
    this.#logger = ctx.logger;
    this.#absPath = path.resolve(ctx.configDir, config.path);
    this.#dir = path.dirname(this.#absPath);
    this.#base = path.basename(this.#absPath);
    this.#display = displayPath(this.#absPath);
  }

  ownsScope(scope: string | null): boolean {
    return claimOwns(this.scopeClaim(), scope);
  }

  /** Any scope can be declared by the file, so before the first load every name might be ours. */
  scopeClaim(): ScopeClaim {
    return { unscoped: true, any: true, scopes: [] };
  }

  start(sink: BackendSink): void {
    if (this.#sink) return;
    this.#sink = sink;
    this.#watch();
    this.#load();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#watcher?.close();
    this.#watcher = null;
    if (this.#debounceTimer) clearTimeout(this.#debounceTimer);
    if (this.#removalTimer) clearTimeout(this.#removalTimer);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    for (const c of this.#checkers.values()) c.stop();
    this.#checkers.clear();
    this.#running?.cancel();
    await this.#chain;
    await this.#publishing; // a pass in progress ends at its next turn, emitting nothing
  }

  // ---- watching ----

  #watch(): void {
    if (this.#stopped) return;
    try {
      const w = watch(this.#dir, { persistent: true }, (_event, filename) => {
        // filename can be null on some platforms: then any event may be ours.
        if (filename === null || filename === this.#base || filename.startsWith('..')) {
          this.#notifiedAtMs ??= receiptClock();
          this.#schedule();
        }
      });
      w.on('error', (err) => {
        // The directory went away (or inotify failed): keep serving, re-arm the watch with backoff.
        w.close();
        if (this.#watcher === w) this.#watcher = null;
        this.#report(this.#readError(err as NodeJS.ErrnoException, 'watch'));
        this.#retryWatch();
      });
      this.#watcher = w;
      this.#backoff.reset();
    } catch (err) {
      this.#report(this.#readError(err as NodeJS.ErrnoException, 'watch'));
      this.#retryWatch();
    }
  }

  #retryWatch(): void {
    if (this.#stopped || this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#watch();
      // The file may have appeared while nothing watched it.
      if (this.#watcher) this.#load();
    }, this.#backoff.next());
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#debounceTimer) clearTimeout(this.#debounceTimer);
    // The file is still being written: a deferred removal waits for quiet again (the next read re-decides).
    if (this.#removalTimer) clearTimeout(this.#removalTimer);
    this.#removalTimer = null;
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = null;
      this.#load();
    }, this.#config.debounceMs);
  }

  // ---- loading ----

  /** `quiet`: the removal quiet period passed with no change event; apply what the file says now. */
  #load(quiet = false): void {
    this.#chain = this.#chain.then(() => this.#loadOnce(quiet));
  }

  async #loadOnce(quiet = false): Promise<void> {
    if (this.#stopped) return;
    // In a child process: read, size limit, content hash, parse and validate (see the header).
    this.#logger.debug({ event: 'reload_started', file: this.#display }, 'reading the services file');
    const running = loadInWorker(
      {
        path: this.#absPath,
        display: this.#display,
        defaultScope: this.#config.defaultScope,
        maxFileBytes: this.#config.maxFileBytes,
        lastHash: quiet ? null : this.#lastHash,
        known: this.#known,
      },
      this.#config.parseHeapMb,
    );
    this.#running = running;
    const r = await running.result;
    this.#running = null;
    if (this.#stopped) return;
    switch (r.kind) {
      case 'read-error': {
        this.#lastHash = null;
        const e = Object.assign(new Error(r.message), { code: r.code }) as NodeJS.ErrnoException;
        this.#fileError = this.#readError(e, 'read');
        this.#report(this.#fileError);
        return;
      }
      case 'too-big':
        this.#lastHash = null;
        this.#fileError = new BackendError('SVCDNS_BACKEND_BAD_DATA', tooBigMessage(this.#display, r.size, this.#config.maxFileBytes), {
          file: this.#display,
          size: r.size,
          limit: this.#config.maxFileBytes,
        });
        this.#report(this.#fileError);
        return;
      case 'crashed':
        this.#lastHash = null;
        this.#fileError = new BackendError('SVCDNS_BACKEND_BAD_DATA', `${this.#display}: not loaded: ${r.reason}`, { file: this.#display });
        this.#report(this.#fileError);
        return;
      case 'unchanged':
        this.#logger.debug({ event: 'reload_unchanged', file: this.#display }, 'services file unchanged');
        return;
      case 'invalid':
        this.#lastHash = r.hash;
        this.#fileError = new BackendError('SVCDNS_BACKEND_BAD_DATA', r.message, r.details);
        this.#report(this.#fileError);
        return;
      case 'ok': {
        // A service sent without its definition is the one held now (the request listed its signature).
        const entries: Entry[] = [];
        for (let n = 0; n < r.entries.length; n++) {
          if (n > 0 && n % FILE_STEP === 0 && !(await this.#turn())) return;
          const e = r.entries[n]!;
          const def = e.def ?? this.#byKey.get(e.key)?.def;
          if (def === undefined) {
            // Cannot happen (the child only elides what `known` listed); never serve a partial file.
            this.#lastHash = null;
            this.#fileError = new BackendError('SVCDNS_BACKEND_BAD_DATA', `${this.#display}: not loaded: the parser process elided unknown service ${e.key}`, { file: this.#display });
            this.#report(this.#fileError);
            return;
          }
          entries.push({ key: e.key, sig: e.sig, checked: e.checked, def });
        }
        this.#lastHash = r.hash;
        await this.#apply(entries, r.inode, quiet);
      }
    }
  }

  /** A valid file was read (see the header for the slow-writer rule). */
  async #apply(entries: Entry[], inode: string, quiet: boolean): Promise<void> {
    // The backend's tables for this file, built FILE_STEP services a turn; the state is switched in one step at
    // the end, so a check result published meanwhile still sees the previous file whole.
    const byKey = new Map<string, Entry>();
    const known: string[] = [];
    const checked: Entry[] = [];
    let instances = 0;
    for (let n = 0; n < entries.length; n++) {
      if (n > 0 && n % FILE_STEP === 0 && !(await this.#turn())) return;
      const e = entries[n]!;
      byKey.set(e.key, e);
      known.push(`${e.key}\t${e.sig}\n`);
      if (e.checked) checked.push(e);
      instances += e.def.instances.length;
    }
    // Services of the served file that this one no longer lists, if it was edited in place (only such a write can
    // be cut short). Services, not instances: a file cut short loses every service after the cut, while an edit
    // that replaces an instance's address is common and must not wait.
    const removed: string[] = [];
    if (this.#loaded && inode === this.#servedInode) for (const key of this.#byKey.keys()) if (!byKey.has(key)) removed.push(key);
    if (removed.length > 0 && !quiet && this.#config.removalDebounceMs > 0) {
      // Maybe a writer paused mid-file: apply only if the file stays like this for removalDebounceMs.
      this.#logger.info(
        { event: 'reload_deferred', file: this.#display, removed: removed.slice(0, 10), removedCount: removed.length, quietMs: this.#config.removalDebounceMs },
        'in-place edit removes services; applying it once the file has been quiet for removalDebounceMs',
      );
      if (this.#removalTimer) clearTimeout(this.#removalTimer);
      this.#removalTimer = setTimeout(() => {
        this.#removalTimer = null;
        this.#load(true);
      }, this.#config.removalDebounceMs);
      return;
    }
    if (this.#removalTimer) clearTimeout(this.#removalTimer);
    this.#removalTimer = null;
    this.#servedInode = inode;
    this.#fileError = null;
    this.#lastLoggedError = null;
    this.#loaded = true;
    this.#entries = entries;
    this.#byKey = byKey;
    this.#known = known.join('');
    this.#syncCheckers(checked);
    // Counts are of the file (served = healthy ones whose checks pass; the store reports those).
    this.#logger.info(
      { event: 'reload', file: this.#display, services: entries.length, instances, checks: this.#checkers.size },
      'services file loaded',
    );
    this.#publish();
  }

  /** Yield one event-loop turn inside a long pass (counted for tests); false when the backend stopped meanwhile. */
  async #turn(): Promise<boolean> {
    this.passes.turns++;
    await nextTurn();
    return !this.#stopped;
  }

  #readError(err: NodeJS.ErrnoException, op: 'read' | 'watch'): BackendError {
    const what = op === 'watch' ? `cannot watch directory ${this.#dir}` : 'cannot read file';
    const hint = err.code === 'ENOENT' ? ' (it is watched: creating it later loads it)' : '';
    return new BackendError(
      'SVCDNS_BACKEND_CONFIG',
      `${this.#display}: ${what}: ${err.code ?? err.message}${hint}`,
      { file: this.#display, errno: err.code },
      err,
    );
  }

  /** Report to the sink every time; log once per distinct problem (the file may be re-saved many times). */
  #report(err: BackendError): void {
    if (this.#stopped) return;
    if (this.#lastLoggedError !== err.message) {
      this.#lastLoggedError = err.message;
      this.#logger.error(
        { event: 'reload_rejected', code: err.code, file: this.#display, err: err.message },
        this.#loaded ? 'services file rejected; serving the previous version' : 'services file not loaded',
      );
    }
    this.#staleReported = true;
    this.#sink?.error(err);
  }

  // ---- checks ----

  /** `checked`: the services with a served check (the parser process flagged them), not all of them. */
  #syncCheckers(checked: readonly Entry[]): void {
    const wanted = new Map<string, NonNullable<ServicesFile['services'][number]['instances'][number]['check']>>();
    // Only services with a served check: a reload of 10k services without checks walks none of their 100k instances.
    for (const e of checked) {
      for (const i of e.def.instances) if (i.healthy && i.check) wanted.set(checkKey(i.check), i.check);
    }
    for (const [key, c] of this.#checkers) {
      if (!wanted.has(key)) {
        c.stop();
        this.#checkers.delete(key);
      }
    }
    for (const [key, spec] of wanted) {
      if (this.#checkers.has(key)) continue;
      const c = new Checker(spec, (changed) => this.#onCheck(changed));
      this.#checkers.set(key, c);
      c.start();
    }
  }

  #onCheck(c: Checker): void {
    if (this.#stopped || this.#checkers.get(c.key) !== c) return;
    this.#logger.info({ event: 'check', check: c.key, status: c.status, reason: c.reason }, 'health check changed');
    this.#publish();
  }

  // ---- snapshots ----

  /**
   * Build the served view from the last valid file and the check results, and emit it when it differs. A pass
   * runs FILE_STEP services a turn; a request while one runs (a check result, a newer file) makes one more pass
   * after it, and a pass whose file was replaced meanwhile is dropped unemitted. Each snapshot is whole: every
   * service of one file, with the check results read during that pass.
   */
  #publish(): void {
    if (this.#stopped) return;
    this.#publishAgain = true;
    if (this.#publishing !== null) return;
    // Not stopped, so the loop awaits #publishOnce (async) before its `finally`: that runs after this assignment.
    this.#publishing = this.#publishLoop();
  }

  async #publishLoop(): Promise<void> {
    try {
      while (this.#publishAgain && !this.#stopped) {
        this.#publishAgain = false;
        await this.#publishOnce();
      }
    } catch (err) {
      // Nothing here is expected to throw; never an unhandled rejection, and the next request runs again.
      this.#logger.error({ err }, 'services file snapshot failed');
    } finally {
      this.#publishing = null;
    }
  }

  async #publishOnce(): Promise<void> {
    const sink = this.#sink;
    if (!this.#loaded || !sink || this.#stopped) return;
    if (!this.#synced) {
      // First sync waits for every check's first verdict (each settles within its timeoutMs).
      for (const c of this.#checkers.values()) if (c.status === 'pending') return;
    }
    this.passes.publish++;
    // Every check's result as of the start of this pass: a check that flips while the pass runs cannot show one
    // status in an early chunk and another in a later one (its flip asks for one more pass).
    const statuses = new Map<string, Checker['status']>();
    for (const [key, c] of this.#checkers) statuses.set(key, c.status);
    const next = new Map<string, Published>();
    const services = new Map<string, Service>();
    const entries = this.#entries;
    const published = this.#published;
    let changed = published.size !== entries.length;
    /** Keys whose Service object differs from the last snapshot's: the store's `changed` hint (O(changes) merge). */
    const changedKeys = new Set<string>();
    // Equal knownTags lists are one array (10k services with one named port share one ['http']: 0.5 MB less).
    const tagLists = new Map<string, readonly string[]>();
    for (let n = 0; n < entries.length; n++) {
      // Stopped, or a newer file applied meanwhile (it asked for its own pass): this one is out of date.
      if (n > 0 && n % FILE_STEP === 0 && (!(await this.#turn()) || this.#entries !== entries)) return;
      const { key, sig: defSig, checked, def } = entries[n]!;
      const prev = published.get(key);
      // Without checks, what a service serves follows from its definition alone: the parser process's signature
      // of it decides reuse, and an unchanged service costs nothing here (10k services per reload).
      if (!checked && prev && prev.sig === defSig) {
        next.set(key, prev);
        services.set(key, prev.service);
        continue;
      }
      const pushed: Instance[] = [];
      // §2.2: tags and port names of every listed instance, healthy or not (others answer NXDOMAIN).
      const knownTags = new Set<string>();
      for (const i of def.instances) {
        for (const t of i.tags) knownTags.add(t);
        for (const p of i.ports) if (p.name !== null) knownTags.add(p.name);
      }
      let unhealthy: UnhealthyInstance[] | undefined;
      for (const i of def.instances) {
        const reason = !i.healthy ? REASON_HEALTHY_FALSE : i.check ? checkReason(i.check.kind, statuses.get(checkKey(i.check))) : null;
        if (reason !== null) {
          (unhealthy ??= []).push(unhealthyEntry(i, reason));
          continue;
        }
        // The definition is an Instance too (plus healthy/check): sharing it keeps one object per instance.
        pushed.push(i);
      }
      if (unhealthy) sortUnhealthy(unhealthy);
      // Every instance served: serve the definition's own (exact-size) array rather than a pushed-to copy of it
      // (room for 17 per service: 1.5 MB at 10k services, issue 11 item 4).
      const instances: readonly Instance[] = unhealthy === undefined ? def.instances : pushed;
      const sorted = [...knownTags].sort();
      const tagKey = sorted.join(' ');
      const tags = tagLists.get(tagKey) ?? sorted;
      tagLists.set(tagKey, tags);
      const sig = checked ? `c${JSON.stringify([def.ttlSeconds ?? null, instances, tags, unhealthy ?? null])}` : defSig;
      let entry: Published;
      if (prev && prev.sig === sig) entry = prev;
      else {
        changed = true;
        const old = prev?.service;
        let served: readonly Instance[] = instances;
        let known: readonly string[] = tags;
        // Only the unhealthy list changed (an unserved instance edited, a check gone from pending to critical):
        // keep the served arrays, so what DNS answers read is the very same data. Compared only in that case.
        if (old && (unhealthy !== undefined || old.unhealthy !== undefined) && JSON.stringify([old.ttlSeconds ?? null, old.instances, old.knownTags]) === JSON.stringify([def.ttlSeconds ?? null, instances, tags])) {
          served = old.instances;
          known = old.knownTags ?? tags;
        }
        const service: Service = { name: def.name, scope: def.scope, ttlSeconds: def.ttlSeconds, instances: served, knownTags: known };
        entry = { sig, service: unhealthy === undefined ? service : { ...service, unhealthy } };
      }
      if (entry !== prev) changedKeys.add(key);
      next.set(key, entry);
      services.set(key, entry.service);
    }
    for (const key of published.keys()) if (!next.has(key)) changedKeys.add(key);
    // After the first snapshot, tell the store which services changed: a one-instance edit of a 10k-service file
    // then costs the store one service, not two passes over 10k (issue 11 items 3, 7). Every other key holds the
    // very Service object of the previous snapshot (reused above).
    const snapshot: ServiceSnapshot = this.#synced
      ? { services, defaultScope: this.#config.defaultScope, changed: changedKeys }
      : { services, defaultScope: this.#config.defaultScope };
    if (this.#synced && !changed && !(this.#staleReported && this.#fileError === null)) {
      this.#notifiedAtMs = null; // nothing served changed: no propagation to time
      return;
    }
    this.#published = next;
    this.#synced = true;
    this.#staleReported = false;
    const receivedAt = this.#notifiedAtMs ?? undefined;
    this.#notifiedAtMs = null;
    sink.snapshot(snapshot, receivedAt);
    // Health changes are published even while the file on disk is invalid; keep reporting that problem.
    if (this.#fileError) this.#report(this.#fileError);
  }
}

/** Why an instance with a check is not served, or null while its last probe passed. */
function checkReason(kind: 'tcp' | 'http', status: 'pending' | 'passing' | 'critical' | undefined): string | null {
  if (status === 'passing') return null;
  if (status === 'critical') return kind === 'tcp' ? REASON_TCP_CHECK_CRITICAL : REASON_HTTP_CHECK_CRITICAL;
  return REASON_CHECK_PENDING;
}

function unhealthyEntry(i: InstanceDef, reason: string): UnhealthyInstance {
  return i.name === undefined ? { address: i.address, reason } : { address: i.address, name: i.name, reason };
}

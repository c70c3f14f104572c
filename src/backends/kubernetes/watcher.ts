// backends/kubernetes/watcher: the KubernetesBackend — client-node ListWatch informers (one cluster-wide, or one
// per configured namespace) feeding a per-object contribution table, coalesced into full snapshots.
//
// Invariants:
// - Served data never goes backwards on failure (§6.3): a LIST result replaces one feed's objects atomically,
//   the informer's own cache is never dropped, and errors only mark the backend stale.
// - The first snapshot is emitted only once every feed has completed a LIST (§5.4: SERVFAIL until then).
// - Changes from one watch chunk (or one relist) are coalesced in a microtask: one snapshot, no half-applied view.
// - No event-loop turn does work proportional to the whole registry (issue 11 items 3, 8): LISTs are paged
//   (LIST_PAGE_SIZE objects a request), a page is translated when it arrives, a relist is applied and dirty
//   services are rebuilt in time-boxed chunks (TURN_BUDGET_MS, then setImmediate), and each snapshot's services
//   map is a SnapshotMap: an immutable copy that costs O(changes), with the changed-keys hint.
// - The informer caches SlimObjects (name, namespace, resourceVersion, our translation), never API objects.

import type { Logger } from 'pino';
import { ListWatch, Watch, getText, type KubeConfig, type KubernetesListObject, type KubernetesObject } from './client.ts';
import type { Backend, BackendMetrics, BackendSink } from '../backend.ts';
import { BackendError, receiptClock } from '../backend.ts';
import { Backoff } from '../backoff.ts';
import { claimOwns, type ScopeClaim, type Service, type ServiceSnapshot } from '../../model/service.ts';
import { serviceKey } from '../../model/service.ts';
import type { KubernetesBackendConfig } from './config.ts';
import { httpStatus, toBackendError } from './errors.ts';
import type { KubeConfigSource } from './kubeconfig.ts';
import { loadKubeConfig } from './kubeconfig.ts';
import type { ApiResource } from './rbac.ts';
import { collectionPath, resourceFor } from './rbac.ts';
import { SnapshotMap } from '../snapshot-map.ts';
import type { Contribution, SlimObject } from './translate.ts';
import { SERVICE_NAME_LABEL, buildService, objectKey, slimObject } from './translate.ts';

/** Options tests may inject (never set from YAML). */
export interface WatcherOptions {
  readonly backoff?: () => Backoff;
  /** Cap (ms) on the informer's own reconnect delay after a cleanly closed watch (client default grows to 30 s). */
  readonly maxReconnectDelayMs?: number;
  /** Overrides config `resyncMs` (tests need sub-second relists; the schema's floor is 10 s). */
  readonly resyncMs?: number;
  /** The backend's metrics (BackendContext.metrics, passed on by index.ts). */
  readonly metrics?: BackendMetrics;
}

/** Stands in for a counter when no metrics hook is given. */
const NO_COUNT = (): void => {};

/** Default cap on the informer's reconnect delay after a watch stream ends normally (ms). */
export const MAX_RECONNECT_DELAY_MS = 5_000;

/** Objects per LIST request (client-go uses 500; EndpointSlices carry up to 100 endpoints): one page = one short turn. */
export const LIST_PAGE_SIZE = 250;

/** Longest stretch (ms) of relist application or service rebuilding before yielding to the event loop. */
const TURN_BUDGET_MS = 8;

/** Let queued I/O (DNS queries) run before continuing a long job. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** In-stream ERROR messages that mean "your resourceVersion is gone" even without `code: 410` (etcd2 era). */
const EXPIRED_MESSAGE = /too old resource version|outdated and cleared/i;

interface Feed {
  readonly namespace: string | null;
  informer: ListWatch<KubernetesObject> | null;
  /** Completed at least one LIST (this feed's part of the first sync). */
  listed: boolean;
  /** A LIST result is being applied in chunks: no snapshot until it is complete (atomic replace, §6.3). */
  applying: boolean;
  /** Failed and not yet recovered (a LIST succeeded or a watch connected since). */
  failure: BackendError | null;
  readonly keys: Set<string>;
  readonly backoff: Backoff;
  restartTimer: NodeJS.Timeout | null;
  resyncTimer: NodeJS.Timeout | null;
}

export class KubernetesBackend implements Backend {
  readonly name: string;
  readonly type = 'kubernetes';
  readonly #config: KubernetesBackendConfig;
  readonly #source: KubeConfigSource;
  readonly #logger: Logger;
  readonly #resource: ApiResource;
  readonly #opts: WatcherOptions;
  readonly #feeds: Feed[] = [];
  /** objectKey `${ns}/${name}` → what it contributes. */
  readonly #objects = new Map<string, Contribution>();
  /**
   * serviceKey → the object key contributing to it, or a Set of them when several do (a Service with more than one
   * slice). One string, not a Set, for the usual single slice: 10k Sets cost 1.5 MB (issue 11 item 4).
   */
  readonly #byService = new Map<string, string | Set<string>>();
  /** The services of the last snapshot emitted (immutable: the store keeps it to diff the next one against). */
  #services: SnapshotMap<Service> = SnapshotMap.empty();
  /** Rebuilt since the last snapshot: serviceKey → new Service, or undefined when it is gone. */
  readonly #pending = new Map<string, Service | undefined>();
  readonly #dirty = new Set<string>();
  readonly #delays = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  readonly #configBackoff: Backoff;
  #configTimer: NodeJS.Timeout | null = null;
  #sink: BackendSink | null = null;
  #kc: KubeConfig | null = null;
  #flushQueued = false;
  /** When the first watch event (or LIST) not yet emitted arrived (receiptClock): propagation, issue 14 #4. */
  #receivedAt: number | null = null;
  #emitted = false;
  /** An error was reported since the last snapshot: the next healthy moment must re-emit to clear staleness. */
  #stale = false;
  #stopped = false;
  readonly #countEvent: (n?: number) => void;
  readonly #countExpired: (n?: number) => void;
  readonly #countRestart: (n?: number) => void;

  constructor(config: KubernetesBackendConfig, source: KubeConfigSource, logger: Logger, opts: WatcherOptions = {}) {
    const m = opts.metrics;
    this.#countEvent = m?.counter('kubernetes_watch_events_total', 'Watch events (ADDED, MODIFIED, DELETED) the Kubernetes backend applied to its cache (bookmarks and errors not counted).') ?? NO_COUNT;
    this.#countExpired = m?.counter('kubernetes_watch_expired_relists_total', 'Watches that expired (410 Gone, as HTTP status or in the stream) and made the informer relist.') ?? NO_COUNT;
    this.#countRestart = m?.counter('kubernetes_watch_restarts_total', 'Informers restarted with backoff after a failed list or watch.') ?? NO_COUNT;
    this.name = config.name ?? 'kubernetes';
    this.#config = config;
    this.#source = source;
    this.#logger = logger;
    this.#resource = resourceFor(config.api);
    this.#opts = opts;
    this.#configBackoff = opts.backoff?.() ?? new Backoff();
    const namespaces = config.namespaces.length > 0 ? config.namespaces : [null];
    for (const namespace of namespaces) {
      this.#feeds.push({
        namespace,
        informer: null,
        listed: false,
        applying: false,
        failure: null,
        keys: new Set(),
        backoff: opts.backoff?.() ?? new Backoff(),
        restartTimer: null,
        resyncTimer: null,
      });
    }
  }

  ownsScope(scope: string | null): boolean {
    return claimOwns(this.scopeClaim(), scope);
  }

  scopeClaim(): ScopeClaim {
    return { unscoped: this.#config.defaultScope !== undefined, any: this.#config.namespaces.length === 0, scopes: this.#config.namespaces };
  }

  start(sink: BackendSink): void {
    if (this.#sink) return;
    this.#sink = sink;
    this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#configTimer) clearTimeout(this.#configTimer);
    // Stop every informer first (synchronously), so none can start a new watch while we wait below.
    const stopping: Promise<void>[] = [];
    for (const feed of this.#feeds) {
      if (feed.restartTimer) clearTimeout(feed.restartTimer);
      if (feed.resyncTimer) clearTimeout(feed.resyncTimer);
      feed.restartTimer = feed.resyncTimer = null;
      const inf = feed.informer;
      feed.informer = null;
      if (inf) stopping.push(inf.stop());
    }
    for (const d of this.#delays) { clearTimeout(d.timer); d.resolve(); }
    this.#delays.clear();
    await Promise.all(stopping);
  }

  /** Load credentials (retrying with backoff: a mounted kubeconfig/token may appear later), then start feeds. */
  #connect(): void {
    if (this.#stopped) return;
    try {
      this.#kc = loadKubeConfig(this.#source, this.#config.context);
    } catch (err) {
      this.#report(err instanceof BackendError ? err : new BackendError('SVCDNS_BACKEND_CONFIG', String(err), {}, err));
      this.#configTimer = setTimeout(() => { this.#configTimer = null; this.#connect(); }, this.#configBackoff.next());
      return;
    }
    this.#logger.info(
      { api: this.#config.api, namespaces: this.#config.namespaces, server: this.#kc.getCurrentCluster()?.server },
      'kubernetes: starting list+watch',
    );
    for (const feed of this.#feeds) this.#startInformer(feed);
  }

  #labelSelector(): string | undefined {
    const user = this.#config.labelSelector;
    // Slices without the service-name label belong to no Service: let the API server filter them out.
    if (this.#config.api === 'endpointslices') return user ? `${SERVICE_NAME_LABEL},${user}` : SERVICE_NAME_LABEL;
    return user;
  }

  /** A fresh informer for the feed (first start and periodic resync). Its first LIST replaces the feed's objects. */
  #startInformer(feed: Feed): void {
    const kc = this.#kc!;
    const r = this.#resource;
    const selector = this.#labelSelector();
    const path = collectionPath(r, feed.namespace);
    const isCurrent = () => !this.#stopped && feed.informer === informer;

    const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      let result: { items: SlimObject[]; resourceVersion: string };
      try {
        result = await this.#list(kc, path, selector, isCurrent);
      } catch (err) {
        throw toBackendError(err, 'list', r, feed.namespace);
      }
      if (isCurrent()) await this.#onList(feed, result.items, isCurrent);
      return { metadata: { resourceVersion: result.resourceVersion }, items: result.items as KubernetesObject[] };
    };

    const watch = new FeedWatch(kc, {
      active: isCurrent,
      event: (type, obj) => {
        if (!isCurrent()) return obj;
        if (type === 'ERROR') {
          const status = obj as { code?: unknown; message?: unknown; reason?: unknown } | null;
          const message = typeof status?.message === 'string' ? status.message : '';
          if (status?.code === 410 || (status?.code === undefined && EXPIRED_MESSAGE.test(message))) {
            this.#logger.info({ namespace: feed.namespace, reason: status?.reason, message }, 'kubernetes: watch expired (in-stream 410), relisting');
            this.#countExpired();
            // client-node relists only on code 410; normalise the code-less etcd2 form so it does too.
            return { ...status, code: 410 };
          }
          this.#report(new BackendError('SVCDNS_BACKEND_HTTP', `watch ${r.resource}: in-stream error: ${message}`, { status }), feed);
          return obj;
        }
        this.#recovered(feed); // events flow again: clear a failure reported on this stream
        if (type === 'BOOKMARK') return obj;
        this.#countEvent();
        return slimObject(obj, this.#config.api) ?? obj; // the informer caches only what we use
      },
      done: (err) => {
        if (!isCurrent() || !err) return err;
        if (httpStatus(err) === 410) {
          this.#logger.info({ namespace: feed.namespace }, 'kubernetes: watch expired (HTTP 410), relisting');
          this.#countExpired();
          return err; // the informer relists by itself
        }
        if ((err as { name?: unknown }).name === 'TimeoutError') return err; // idle watch: informer re-watches
        return toBackendError(err, 'watch', r, feed.namespace);
      },
      connected: () => {
        if (isCurrent()) this.#recovered(feed);
      },
    });

    const delayFn = (ms: number) => this.#delay(Math.min(ms, this.#opts.maxReconnectDelayMs ?? MAX_RECONNECT_DELAY_MS));
    const informer: ListWatch<KubernetesObject> = new ListWatch(path, watch, list, false, selector, undefined, { delayFn });
    feed.informer = informer;
    informer.on('add', (obj) => { if (isCurrent()) this.#upsert(feed, obj); });
    informer.on('update', (obj) => { if (isCurrent()) this.#upsert(feed, obj); });
    informer.on('delete', (obj) => { if (isCurrent()) this.#remove(feed, obj); });
    informer.on('error', (err) => { if (isCurrent()) this.#failed(feed, informer, err); });
    informer.start().catch((err: unknown) => { if (isCurrent()) this.#failed(feed, informer, err); });
    this.#scheduleResync(feed);
  }

  /**
   * LIST the collection in pages of LIST_PAGE_SIZE (the API server keeps one resourceVersion across pages), each
   * page parsed and slimmed as it arrives. An expired continue token (410) falls back to one full LIST, as
   * client-go's pager does. Stops early (returning what it has) once the informer is no longer current.
   */
  async #list(kc: KubeConfig, path: string, labelSelector: string | undefined, isCurrent: () => boolean): Promise<{ items: SlimObject[]; resourceVersion: string }> {
    const items: SlimObject[] = [];
    let limit: string | undefined = String(LIST_PAGE_SIZE);
    let cont: string | undefined;
    for (;;) {
      let text: string;
      try {
        text = await getText(kc, path, { labelSelector, limit, continue: cont });
      } catch (err) {
        if (cont === undefined || httpStatus(err) !== 410) throw err;
        this.#logger.info({ path }, 'kubernetes: list continue token expired, listing in one request');
        items.length = 0;
        limit = cont = undefined;
        continue;
      }
      const page = JSON.parse(text) as { metadata?: { resourceVersion?: unknown; continue?: unknown }; items?: unknown };
      if (Array.isArray(page.items)) {
        for (const obj of page.items) {
          const slim = slimObject(obj, this.#config.api);
          if (slim) items.push(slim);
        }
      }
      const next = page.metadata?.continue;
      if (typeof next === 'string' && next !== '' && limit !== undefined && isCurrent()) {
        cont = next;
        continue;
      }
      const rv = page.metadata?.resourceVersion;
      return { items, resourceVersion: typeof rv === 'string' ? rv : '' };
    }
  }

  /** Periodic relist (`resyncMs`): a new informer LISTs and takes over; the old one's callbacks are ignored. */
  #scheduleResync(feed: Feed): void {
    const every = this.#opts.resyncMs ?? this.#config.resyncMs;
    if (every <= 0 || this.#stopped) return;
    if (feed.resyncTimer) clearTimeout(feed.resyncTimer);
    feed.resyncTimer = setTimeout(() => {
      feed.resyncTimer = null;
      if (this.#stopped || feed.restartTimer) { this.#scheduleResync(feed); return; }
      const old = feed.informer;
      this.#logger.debug({ namespace: feed.namespace }, 'kubernetes: periodic resync (relist)');
      this.#startInformer(feed);
      void old?.stop();
    }, every);
  }

  /** Cancellable sleep for the informer's reconnect delay, so stop() never waits on it. */
  #delay(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = { timer: setTimeout(() => { this.#delays.delete(entry); resolve(); }, ms), resolve };
      this.#delays.add(entry);
    });
  }

  /** The informer stopped on an error: report it and restart it with backoff (it resumes from its resourceVersion). */
  #failed(feed: Feed, informer: ListWatch<KubernetesObject>, err: unknown): void {
    const be = toBackendError(err, 'watch', this.#resource, feed.namespace);
    this.#report(be, feed);
    if (feed.restartTimer) return;
    const delay = feed.backoff.next();
    this.#countRestart();
    this.#logger.debug({ namespace: feed.namespace, code: be.code, err: be, delayMs: delay }, 'kubernetes: restarting informer after backoff');
    feed.restartTimer = setTimeout(() => {
      feed.restartTimer = null;
      if (this.#stopped || feed.informer !== informer) return;
      informer.start().catch((e: unknown) => { if (feed.informer === informer) this.#failed(feed, informer, e); });
    }, delay);
  }

  #report(err: BackendError, feed?: Feed): void {
    if (this.#stopped) return;
    if (feed) feed.failure = err;
    this.#stale = true;
    this.#sink?.error(err);
  }

  #recovered(feed: Feed): void {
    feed.backoff.reset();
    if (feed.failure) {
      feed.failure = null;
      this.#scheduleFlush();
    }
  }

  /**
   * A LIST result: the authoritative content of this feed at that resourceVersion; replace it atomically — no
   * snapshot while it is half applied — in chunks of TURN_BUDGET_MS (10k objects would otherwise be one turn).
   */
  async #onList(feed: Feed, items: readonly SlimObject[], isCurrent: () => boolean): Promise<void> {
    feed.applying = true;
    try {
      const seen = new Set<string>();
      for (const obj of items) seen.add(`${obj.metadata.namespace}/${obj.metadata.name}`);
      for (const key of feed.keys) if (!seen.has(key)) this.#drop(feed, key);
      let t0 = performance.now();
      for (let i = 0; i < items.length; i++) {
        this.#upsert(feed, items[i]!);
        if ((i & 127) === 127 && performance.now() - t0 > TURN_BUDGET_MS) {
          await nextTurn();
          if (!isCurrent()) return; // replaced (resync) or stopped: the next LIST replaces everything again
          t0 = performance.now();
        }
      }
    } finally {
      feed.applying = false;
    }
    if (!feed.listed) this.#logger.info({ namespace: feed.namespace, objects: items.length }, 'kubernetes: initial list complete');
    feed.listed = true;
    this.#recovered(feed);
    this.#scheduleFlush();
  }

  #upsert(feed: Feed, obj: KubernetesObject | SlimObject): void {
    const slim = 'contribution' in obj ? obj : slimObject(obj, this.#config.api);
    if (!slim) return;
    const key = `${slim.metadata.namespace}/${slim.metadata.name}`;
    const c = slim.contribution;
    if (!c) { this.#drop(feed, key); return; }
    const prev = this.#objects.get(key);
    if (prev === c && feed.keys.has(key)) return; // the informer re-announcing what the LIST already applied
    if (prev) {
      const prevSk = serviceKey(prev.scope, prev.service);
      if (prevSk !== serviceKey(c.scope, c.service)) this.#unindex(prevSk, key);
    }
    if (c.skipped > 0) this.#logger.debug({ object: key, skipped: c.skipped }, 'kubernetes: skipped unusable addresses/ports');
    this.#objects.set(key, c);
    feed.keys.add(key);
    const sk = serviceKey(c.scope, c.service);
    const had = this.#byService.get(sk);
    if (had === undefined) this.#byService.set(sk, key);
    else if (typeof had === 'string') {
      if (had !== key) this.#byService.set(sk, new Set([had, key]));
    } else had.add(key);
    this.#receivedAt ??= receiptClock(); // in the turn the event (or LIST) arrived
    this.#dirty.add(sk);
    this.#scheduleFlush();
  }

  #remove(feed: Feed, obj: KubernetesObject): void {
    const k = objectKey(obj);
    if (k) this.#drop(feed, `${k.namespace}/${k.name}`);
  }

  #drop(feed: Feed, key: string): void {
    feed.keys.delete(key);
    const prev = this.#objects.get(key);
    if (!prev) return;
    this.#objects.delete(key);
    this.#unindex(serviceKey(prev.scope, prev.service), key);
    this.#scheduleFlush();
  }

  #unindex(sk: string, key: string): void {
    const had = this.#byService.get(sk);
    if (had === key) this.#byService.delete(sk);
    else if (had !== undefined && typeof had !== 'string') {
      had.delete(key);
      if (had.size === 1) for (const only of had) this.#byService.set(sk, only);
    }
    this.#receivedAt ??= receiptClock(); // in the turn the event (or LIST) arrived
    this.#dirty.add(sk);
  }

  /** Coalesce: one flush per microtask; `later`: continue a chunked flush after queued I/O (setImmediate). */
  #scheduleFlush(later = false): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    const run = () => {
      this.#flushQueued = false;
      this.#flush();
    };
    if (later) setImmediate(run);
    else queueMicrotask(run);
  }

  /**
   * Rebuild dirty services (time-boxed: a first sync of 10k services spans several turns) and, once none is
   * left, hand the sink a snapshot when something changed (or staleness cleared). The snapshot's map is the
   * previous one with only the changed keys replaced (O(changes)), and `changed` names exactly those keys.
   */
  #flush(): void {
    if (this.#stopped || !this.#sink) return;
    // First sync not complete: keep SERVFAIL (§5.4). A LIST being applied: never emit a half-replaced feed.
    if (!this.#feeds.every((f) => f.listed && !f.applying)) return;
    const t0 = performance.now();
    let n = 0;
    for (const sk of this.#dirty) {
      this.#dirty.delete(sk);
      const keys = this.#byService.get(sk);
      const prev = this.#pending.has(sk) ? this.#pending.get(sk) : this.#services.get(sk);
      if (keys === undefined) {
        if (prev) this.#pending.set(sk, undefined);
      } else {
        const contributions: Contribution[] = [];
        if (typeof keys === 'string') contributions.push(this.#objects.get(keys)!);
        else for (const k of keys) contributions.push(this.#objects.get(k)!);
        const first = contributions[0]!;
        const svc = buildService(first.scope, first.service, contributions, prev);
        if (svc !== prev) this.#pending.set(sk, svc);
      }
      if ((++n & 127) === 0 && this.#dirty.size > 0 && performance.now() - t0 > TURN_BUDGET_MS) {
        this.#scheduleFlush(true);
        return;
      }
    }
    // A pending entry equal to what was emitted (a service changed and changed back) is no change.
    for (const [sk, svc] of this.#pending) if (svc === this.#services.get(sk)) this.#pending.delete(sk);
    const failing = this.#feeds.find((f) => f.failure !== null);
    if (this.#pending.size === 0 && this.#emitted && !(this.#stale && !failing)) {
      this.#receivedAt = null; // the events changed nothing served: no propagation to time
      return;
    }
    const changed = new Set(this.#pending.keys());
    this.#services = this.#services.with(this.#pending);
    this.#pending.clear();
    // After the first snapshot, tell the store which services changed so it merges O(changes) (model/service.ts).
    const snapshot: ServiceSnapshot = {
      services: this.#services,
      defaultScope: this.#config.defaultScope ?? null,
      changed: this.#emitted ? changed : undefined,
    };
    if (!this.#emitted) this.#logger.info({ services: this.#services.size }, 'kubernetes: synced');
    this.#emitted = true;
    this.#stale = false;
    const receivedAt = this.#receivedAt ?? undefined;
    this.#receivedAt = null;
    this.#sink.snapshot(snapshot, receivedAt);
    // New data arrived through a healthy feed while another still fails: stay visibly stale (§6.3).
    if (failing?.failure) this.#report(failing.failure, failing);
  }
}

interface FeedWatchHooks {
  /** False once the owning informer was replaced or the backend stopped: refuse to open new watches. */
  active(): boolean;
  /** Sees every event first; may rewrite the object (normalising code-less 410s). */
  event(type: string, obj: unknown): unknown;
  /** Maps the error that ended a watch (null = clean close) before the informer sees it. */
  done(err: unknown): unknown;
  /** A watch request got its 200 and is streaming. */
  connected(): void;
}

/** client-node's Watch, plus `allowWatchBookmarks=true` and hooks for errors, expiry and reconnection. */
class FeedWatch extends Watch {
  readonly #hooks: FeedWatchHooks;
  constructor(kc: KubeConfig, hooks: FeedWatchHooks) {
    super(kc);
    this.#hooks = hooks;
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    done: (err: any) => void,
  ): Promise<AbortController> {
    if (!this.#hooks.active()) {
      done(null); // informer replaced/stopped: it sees a clean close and, being stopped, does not retry
      return new AbortController();
    }
    let failed = false;
    const controller = await super.watch(
      path,
      // Bookmarks keep our resourceVersion fresh on quiet clusters, so a reconnect rarely needs a relist.
      { ...queryParams, allowWatchBookmarks: true },
      (phase, obj, raw) => callback(phase, this.#hooks.event(phase, obj), raw),
      (err) => {
        if (err) failed = true;
        done(this.#hooks.done(err));
      },
    );
    if (!failed) this.#hooks.connected();
    return controller;
  }
}

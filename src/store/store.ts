// store/store: the merged view of every backend's latest snapshot (§6.2), its generation/serial, and readiness.
//
// Backends hand in immutable snapshots; the store folds each one into its indexes within one synchronous call,
// so a query (also synchronous) sees either the old view or the new one, never a mix. Merging is incremental:
// only services whose object changed since the backend's previous snapshot are recomputed, so one change costs
// the same with 10 services as with 10,000. Merged entries are immutable objects, replaced on change. The one
// exception to "one call": a big first snapshot of a backend (stageFirstSyncOver) is folded over several turns
// while the backend still counts as syncing (see #staging), so each name shows its pre-sync answer or its new one.
// Memory (issue 11 item 4): the indexes share what the backends gave (Instance arrays, address strings), one PTR
// list per service rather than per address, interned tag sets: ~8 MB at 10k services × 10 over the Services.
//
// Dependencies (§6.4): every read an answer makes names what it read as a key (`s:S/N` a merged service, `a:V/A`
// an address in view V, `t:V/T` a tag, `S:S` a scope, `U` the unscoped view, `p:A` the services holding address A
// in any view (PTR, §3.8), `r:R` whether reverse name R has an address below it (§2.5)), recorded between beginTrack() and
// endTrack(); every generation logs the keys whose reads changed, or null when anything may have (a backend
// registered or synced for the first time: SERVFAILs change). The answer cache drops exactly the names that
// read a changed key (changedSince). A new read method must record its key, or cached answers go stale.

import type { Instance, ScopeClaim, Service, ServiceSnapshot } from '../model/service.ts';
import { serviceKey, tagsOf } from '../model/service.ts';
import { reverseName } from '../model/names.ts';

/** One name as answered: the merged healthy instances of every backend that serves it. */
export interface MergedService {
  readonly name: string;
  /** The scope for scoped names; null for the unscoped view (§2.1). */
  readonly scope: string | null;
  /** Smallest per-service TTL among the contributing services, if any set one (§3.4). */
  readonly ttlSeconds: number | undefined;
  /** De-duplicated by address and ports (§6.2). Empty for a known service with nothing healthy (§5.3). */
  readonly instances: readonly Instance[];
  /** Tags and port names some registered instance carries, healthy or not (§2.2): others are NXDOMAIN. */
  readonly tags: ReadonlySet<string>;
  /** Backends that contributed (for /v1/services and debugging). */
  readonly backends: readonly string[];
}

export type BackendState = 'syncing' | 'synced' | 'stale';

export interface BackendStatus {
  readonly name: string;
  readonly type: string;
  readonly state: BackendState;
  /** Epoch ms of the last snapshot, or null before the first one. */
  readonly lastSyncMs: number | null;
  /** Epoch ms at which the current state began. */
  readonly sinceMs: number;
  readonly lastError: { readonly code: string; readonly message: string } | null;
  readonly services: number;
  readonly instances: number;
}

export interface StoreOptions {
  /** Injected clock (epoch ms). */
  now?: () => number;
  /**
   * A backend's first snapshot with at least this many services is folded in over several event-loop turns (see
   * "Staged first sync" below) instead of one: 10k services × 10 took one 300-700 ms turn. The server's store
   * (app.ts) uses STAGE_FIRST_SYNC_OVER. Default Infinity: every snapshot is folded in within the call (replicas,
   * tests and benches that read the store right after apply()).
   */
  stageFirstSyncOver?: number;
  /** Longest stretch (ms) of a staged first sync before it yields to the event loop. Default 8. */
  stageTurnBudgetMs?: number;
}

/** StoreOptions.stageFirstSyncOver for the server's store (services). */
export const STAGE_FIRST_SYNC_OVER = 5_000;
/** StoreOptions.stageTurnBudgetMs default. */
export const STAGE_TURN_BUDGET_MS = 8;

interface BackendEntry {
  readonly name: string;
  readonly type: string;
  readonly ownsScope: (scope: string | null) => boolean;
  readonly claim: (() => ScopeClaim) | undefined;
  snapshot: ServiceSnapshot | null;
  state: BackendState;
  lastSyncMs: number | null;
  sinceMs: number;
  lastError: { code: string; message: string } | null;
  instances: number;
  /** `[name]`, frozen: the `backends` of every MergedService this backend alone feeds (one array, not 10k). */
  readonly only: readonly string[];
}

const EMPTY_MAP: ReadonlyMap<string, Service> = new Map();

/** A staged first sync in progress: the backend's services, folded in order up to `next`. */
interface Staging {
  readonly entry: BackendEntry;
  readonly todo: readonly Service[];
  next: number;
  readonly defaultScope: string | null;
}

export type StoreListener = (generation: number) => void;

/** Generations of change keys kept for changedSince(); a cache further behind drops everything. */
const CHANGE_LOG_GENERATIONS = 1024;

/** What happened to the store, for replicas (workers) that must follow it exactly. */
export type StoreEvent =
  | { readonly kind: 'register'; readonly name: string; readonly type: string }
  | { readonly kind: 'unregister'; readonly name: string }
  /** The backend's instance was swapped (a reload changed its settings); an 'apply' of its first data follows. */
  | { readonly kind: 'replace'; readonly name: string; readonly type: string }
  | { readonly kind: 'apply'; readonly name: string; readonly snapshot: ServiceSnapshot }
  | { readonly kind: 'fail'; readonly name: string; readonly error: { readonly code: string; readonly message: string } };

export class Store {
  readonly #now: () => number;
  readonly #backends = new Map<string, BackendEntry>();
  /** scope → name → merged. */
  readonly #scoped = new Map<string, Map<string, MergedService>>();
  readonly #unscoped = new Map<string, MergedService>();
  /** Per view ('' for the unscoped view, else the scope): how many services carry each tag, for `_T.service[.S].D` (§2.5). */
  readonly #tagViews = new Map<string, Map<string, number>>();
  /**
   * Address → every merged service (all views) with a healthy instance at it: PTR answers (§3.8) and, by the
   * scopes of those services, `.addr` names (§2.4). Each list is immutable and shared by every address whose list
   * is the same (the 10 addresses of one service share one list): one array per service, not one per address.
   */
  readonly #ptr = new Map<string, readonly MergedService[]>();
  /** Tag sets by content ('\n'-joined sorted tags), shared by every MergedService carrying the same set. */
  readonly #tagSets = new Map<string, { readonly set: ReadonlySet<string>; refs: number }>();
  /** Reverse name (`0.10.in-addr.arpa`) → addresses in #ptr below it: the reverse empty non-terminals (§2.5). */
  readonly #revNames = new Map<string, number>();
  readonly #listeners = new Set<StoreListener>();
  readonly #observers = new Set<(e: StoreEvent) => void>();
  #unsynced = 0;
  #generation = 0;
  readonly #serialBase: number;
  /** Keys read since beginTrack(), or null when no one is tracking (the usual case: one null check a read). */
  #track: Set<string> | null = null;
  /** Keys whose reads changed in the step being applied; null once anything may have changed. */
  #changes: Set<string> | null = new Set();
  /** The change keys of the last generations: entry i is generation #logFirst + i. */
  readonly #log: (ReadonlySet<string> | null)[] = [];
  #logFirst = 1;
  readonly #stageOver: number;
  readonly #stageBudgetMs: number;
  /**
   * Staged first sync (issue 11 item 2): a backend's first big snapshot is folded in a few ms at a time. Until the
   * last service is in, the backend stays `syncing`, so every name it could own answers either from the data
   * folded so far or SERVFAIL (§5.4, as before its first snapshot), never NXDOMAIN; each name goes from its old
   * answer straight to its new one (one service's recompute is one synchronous step); reverse names (PTR, whose
   * answer spans services) answer as before the sync until the end. No generation moves while
   * it runs, so cached answers stay those of the old view; the end marks the backend synced and drops them all.
   * Every mutation first completes a staged sync in the same call (finishStaging), so nothing ever merges
   * against half-folded indexes.
   */
  #staging: Staging | null = null;

  constructor(opts: StoreOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#stageOver = opts.stageFirstSyncOver ?? Infinity;
    this.#stageBudgetMs = opts.stageTurnBudgetMs ?? STAGE_TURN_BUDGET_MS;
    // Seconds since the epoch at start, plus one per change: grows with the data, also across restarts (§1.3).
    this.#serialBase = Math.floor(this.#now() / 1000);
  }

  /** Bumped on every change of served data; the encoded-answer cache is keyed on it. */
  get generation(): number {
    return this.#generation;
  }

  /** SOA serial (§1.3): a 32-bit number that grows whenever the served data changes. */
  get serial(): number {
    return (this.#serialBase + this.#generation) >>> 0;
  }

  /** Backend → receipt time (receiptClock) of its oldest change not yet served: propagation (issue 14 #4). */
  readonly #unserved = new Map<string, number>();
  #propagated: ((backend: string, seconds: number) => void) | null = null;

  /** Where end-to-end propagation times go (Metrics: `svcdns_propagation_seconds{backend}`). */
  onPropagated(fn: ((backend: string, seconds: number) => void) | null): void {
    this.#propagated = fn;
  }

  /** The change a backend just applied (the generation moved) arrived at `atMs` (receiptClock). */
  received(backend: string, atMs: number): void {
    if (!this.#unserved.has(backend)) this.#unserved.set(backend, atMs);
  }

  /**
   * An answer of `generation` is being served (the processor's first of that generation, an integer compare per
   * query): every change received until then is now visible, observed once each. `atMs`: when it was served, if
   * not now (a worker thread's report, workers/pool.ts; a report for an older generation observes nothing: the
   * first answer of the current one will, with the longer time).
   */
  served(generation: number, atMs?: number): void {
    if (this.#unserved.size === 0 || generation !== this.#generation) return;
    const now = atMs ?? performance.timeOrigin + performance.now();
    for (const [backend, atMs] of this.#unserved) this.#propagated?.(backend, Math.max(0, now - atMs) / 1000);
    this.#unserved.clear();
  }

  onChange(listener: StoreListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Follow every register/unregister/apply/fail, in order (store/replication.ts). */
  observe(observer: (e: StoreEvent) => void): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  #emit(e: StoreEvent): void {
    for (const o of this.#observers) o(e);
  }

  /** Start recording the dependency keys of reads (one answer being planned). */
  beginTrack(): void {
    this.#track = new Set();
  }

  /** Stop recording; the keys read since beginTrack(). */
  endTrack(): ReadonlySet<string> {
    const t = this.#track ?? new Set<string>();
    this.#track = null;
    return t;
  }

  /**
   * The keys whose reads changed after generation `since` up to now (empty when nothing did), or null when
   * anything may have changed or the log no longer reaches back that far: then drop every cached answer.
   */
  changedSince(since: number): ReadonlySet<string> | null {
    if (since >= this.#generation) return new Set();
    if (since + 1 < this.#logFirst) return null;
    const first = this.#log[since + 1 - this.#logFirst];
    if (first === undefined || first === null) return null;
    if (since + 1 === this.#generation) return first;
    const out = new Set<string>();
    for (let g = since + 1; g <= this.#generation; g++) {
      const keys = this.#log[g - this.#logFirst];
      if (keys === undefined || keys === null) return null;
      for (const k of keys) out.add(k);
    }
    return out;
  }

  #changed(key: string): void {
    this.#changes?.add(key);
  }

  /** A backend's last snapshot (null before its first one). */
  snapshotOf(name: string): ServiceSnapshot | null {
    return this.#backends.get(name)?.snapshot ?? null;
  }

  /** The scope test a backend registered with (replication evaluates it for replicas). */
  ownsScopeOf(name: string): ((scope: string | null) => boolean) | undefined {
    return this.#backends.get(name)?.ownsScope;
  }

  /** The backend's own ScopeClaim, when it gives one. */
  claimOf(name: string): ScopeClaim | undefined {
    return this.#backends.get(name)?.claim?.();
  }

  /** Declare a backend before it reports; until its first snapshot, names it could own answer SERVFAIL (§5.4). */
  register(name: string, type: string, ownsScope: (scope: string | null) => boolean, claim?: () => ScopeClaim): void {
    this.finishStaging();
    if (this.#backends.has(name)) throw new Error(`backend ${name} registered twice`);
    this.#backends.set(name, {
      name,
      type,
      ownsScope,
      claim,
      snapshot: null,
      state: 'syncing',
      lastSyncMs: null,
      sinceMs: this.#now(),
      lastError: null,
      instances: 0,
      only: Object.freeze([name]),
    });
    this.#unsynced++;
    this.#emit({ kind: 'register', name, type });
    this.#changes = null;
    this.#bump(); // answers change: names this backend could own now answer SERVFAIL (§5.4)
  }

  /** Drop a backend and everything it served (config reload removed it). */
  unregister(name: string): void {
    this.finishStaging();
    const entry = this.#backends.get(name);
    if (!entry) return;
    if (entry.snapshot) this.apply(name, { services: EMPTY_MAP, defaultScope: null });
    if (entry.state === 'syncing') this.#unsynced--;
    this.#backends.delete(name);
    this.#emit({ kind: 'unregister', name });
    this.#changes = null;
    this.#bump();
  }

  /**
   * Make-before-break (§5.4, a reload that changes a backend): swap a registered backend's identity (type, scope
   * test, claim) for a new instance's and fold in that instance's first snapshot, in one synchronous step. Its
   * names go from the old instance's data straight to the new one's: never unknown, never SERVFAIL. The new data
   * is diffed against the old instance's (the snapshot's own `changed` hint is relative to nothing here).
   */
  replace(name: string, type: string, ownsScope: (scope: string | null) => boolean, claim: (() => ScopeClaim) | undefined, snapshot: ServiceSnapshot): void {
    this.retarget(name, type, ownsScope, claim);
    this.apply(name, { services: snapshot.services, defaultScope: snapshot.defaultScope });
  }

  /** The identity half of replace() (replicas receive it as its own message, followed by the apply). */
  retarget(name: string, type: string, ownsScope: (scope: string | null) => boolean, claim?: () => ScopeClaim): void {
    this.finishStaging();
    const entry = this.#backends.get(name);
    if (!entry) throw new Error(`unknown backend ${name}`);
    this.#backends.set(name, { ...entry, type, ownsScope, claim });
    this.#emit({ kind: 'replace', name, type });
    this.#changes = null; // what it could own changed: the apply that follows drops every cached answer
  }

  /** Fold in a backend's full snapshot. Marks it synced. */
  apply(name: string, snapshot: ServiceSnapshot): void {
    this.#apply(name, snapshot, null);
  }

  /**
   * Fold in a change made in place (replicas, issue 11 #3): `snapshot.services` is the map the previous snapshot
   * held too, already updated, `snapshot.changed` names the keys that changed and `before` their values before
   * the change (absent: the key was new). One change costs O(1) whatever the number of services: no map is
   * copied to keep the previous one for diffing. Such a store's snapshots are not immutable: only a replica,
   * which nobody else reads the snapshots of, may use this.
   */
  applyInPlace(name: string, snapshot: ServiceSnapshot & { readonly changed: ReadonlySet<string> }, before: ReadonlyMap<string, Service>): void {
    this.#apply(name, snapshot, before);
  }

  #apply(name: string, snapshot: ServiceSnapshot, before: ReadonlyMap<string, Service> | null): void {
    this.finishStaging();
    const entry = this.#backends.get(name);
    if (!entry) throw new Error(`unknown backend ${name}`);
    this.#emit({ kind: 'apply', name, snapshot });
    const prev = entry.snapshot;
    entry.snapshot = snapshot;
    if (prev === null && entry.state === 'syncing' && snapshot.services.size >= this.#stageOver) {
      this.#stage(entry, snapshot);
      return;
    }
    if (entry.state === 'syncing') this.#changes = null; // its names stop answering SERVFAIL (§5.4)
    if (entry.state === 'syncing') this.#unsynced--;
    if (entry.state !== 'synced') entry.sinceMs = this.#now();
    entry.state = 'synced';
    entry.lastSyncMs = this.#now();
    entry.lastError = null;

    const prevServices = prev?.services ?? EMPTY_MAP;
    const scopedKeys = new Set<string>(); // serviceKey(scope,name)
    const unscopedNames = new Set<string>();
    const defaultChanged = (prev?.defaultScope ?? null) !== snapshot.defaultScope;
    const prevDefault = prev?.defaultScope ?? null;

    const touch = (svc: Service, defaultScope: string | null) => {
      scopedKeys.add(serviceKey(svc.scope, svc.name));
      if (svc.scope === defaultScope) unscopedNames.add(svc.name);
    };
    if (snapshot.changed !== undefined && prev !== null && !defaultChanged) {
      // The backend says which keys changed: O(changes), whatever the number of services.
      let delta = 0;
      for (const key of snapshot.changed) {
        const svc = snapshot.services.get(key);
        const old = before !== null ? before.get(key) : prevServices.get(key);
        if (svc === old) continue;
        if (svc) touch(svc, snapshot.defaultScope);
        if (old) touch(old, prevDefault);
        delta += (svc?.instances.length ?? 0) - (old?.instances.length ?? 0);
      }
      entry.instances += delta;
    } else {
      for (const [key, svc] of snapshot.services) {
        const old = prevServices.get(key);
        if (old !== svc || defaultChanged) {
          touch(svc, snapshot.defaultScope);
          if (old) touch(old, prevDefault);
        }
      }
      for (const [key, old] of prevServices) {
        if (!snapshot.services.has(key) || defaultChanged) touch(old, prevDefault);
      }
      let instances = 0;
      for (const svc of snapshot.services.values()) instances += svc.instances.length;
      entry.instances = instances;
    }

    if (scopedKeys.size === 0 && unscopedNames.size === 0 && prev !== null) return;
    for (const key of scopedKeys) {
      const slash = key.indexOf('/');
      this.#recomputeScoped(key.slice(0, slash), key.slice(slash + 1));
    }
    for (const n of unscopedNames) this.#recomputeUnscoped(n);
    this.#bump();
  }

  /** Begin a staged first sync (see #staging): the backend stays `syncing` until its last service is folded in. */
  #stage(entry: BackendEntry, snapshot: ServiceSnapshot): void {
    entry.lastError = null;
    let instances = 0;
    const todo: Service[] = [];
    for (const svc of snapshot.services.values()) {
      todo.push(svc);
      instances += svc.instances.length;
    }
    entry.instances = instances;
    this.#changes = null; // its names stop answering SERVFAIL at the end (§5.4): every cached answer goes then
    const staging = { entry, todo, next: 0, defaultScope: snapshot.defaultScope };
    this.#staging = staging;
    this.#stageStep(staging);
  }

  /** Fold services for up to stageTurnBudgetMs, then continue after the I/O queued meanwhile (DNS queries). */
  #stageStep(staging: Staging): void {
    if (this.#staging !== staging) return; // finished (or superseded) meanwhile
    const t0 = performance.now();
    const { todo, defaultScope } = staging;
    while (staging.next < todo.length) {
      const svc = todo[staging.next++]!;
      this.#recomputeScoped(svc.scope, svc.name);
      if (svc.scope === defaultScope) this.#recomputeUnscoped(svc.name);
      if ((staging.next & 63) === 0 && performance.now() - t0 >= this.#stageBudgetMs && staging.next < todo.length) {
        setImmediate(() => this.#stageStep(staging));
        return;
      }
    }
    this.#staging = null;
    const entry = staging.entry;
    this.#unsynced--;
    entry.state = 'synced';
    entry.sinceMs = entry.lastSyncMs = this.#now();
    this.#changes = null;
    this.#bump();
  }

  /**
   * Complete a staged first sync now, in this call (every mutation does first; tests and shutdown may too). A
   * no-op when none runs.
   */
  finishStaging(): void {
    const staging = this.#staging;
    if (staging === null) return;
    const { todo, defaultScope } = staging;
    while (staging.next < todo.length) {
      const svc = todo[staging.next++]!;
      this.#recomputeScoped(svc.scope, svc.name);
      if (svc.scope === defaultScope) this.#recomputeUnscoped(svc.name);
    }
    this.#stageStep(staging); // nothing left: marks it synced and bumps
  }

  /**
   * A backend failed after (or before) syncing: keep its data, mark it stale (§6.3) or still syncing.
   * `staleSinceMs`: when this is the continuation of an earlier staleness (the supervisor knows), its start.
   */
  fail(name: string, error: { code: string; message: string }, staleSinceMs?: number): void {
    this.finishStaging();
    const entry = this.#backends.get(name);
    if (!entry) return;
    entry.lastError = { code: error.code, message: error.message };
    this.#emit({ kind: 'fail', name, error: entry.lastError });
    // A syncing backend may have learned what it owns (Consul: its agent's datacenter): cached SERVFAILs go.
    if (entry.state === 'syncing') {
      this.#changes = null;
      this.#bump();
    }
    if (entry.state === 'synced') {
      entry.state = 'stale';
      entry.sinceMs = staleSinceMs ?? this.#now();
    }
  }

  /** Answers may have changed for a reason outside the data (a replica's claim update): drop cached answers. */
  invalidate(): void {
    this.finishStaging();
    this.#changes = null;
    this.#bump();
  }

  // ---- reads (hot path: no allocation) ----

  /** The merged service for `N.service[.S].D`; undefined when no backend knows it. */
  service(scope: string | null, name: string): MergedService | undefined {
    if (this.#track !== null) this.#track.add(`s:${scope ?? ''}/${name}`);
    return scope === null ? this.#unscoped.get(name) : this.#scoped.get(scope)?.get(name);
  }

  /** Whether the scope has any service (empty non-terminals `S.D`, `service.S.D`, §2.5). */
  hasScope(scope: string): boolean {
    if (this.#track !== null) this.#track.add(`S:${scope}`);
    return this.#scoped.has(scope);
  }

  /** Whether the view (null: the unscoped one) has any service: `_tcp.service[.S].D` exist then (§2.5). */
  hasServices(scope: string | null): boolean {
    if (this.#track !== null) this.#track.add(scope === null ? 'U' : `S:${scope}`);
    return scope === null ? this.#unscoped.size > 0 : this.#scoped.has(scope);
  }

  /** Whether some service of the view carries the tag or port name: `_T.service[.S].D` exists then (§2.5). */
  hasTag(scope: string | null, tag: string): boolean {
    if (this.#track !== null) this.#track.add(`t:${scope ?? ''}/${tag}`);
    return (this.#tagViews.get(scope ?? '')?.get(tag) ?? 0) > 0;
  }

  /** Whether some healthy instance in this view has the address (§2.4). `address` is canonical text. */
  hasAddress(scope: string | null, address: string): boolean {
    if (this.#track !== null) this.#track.add(`a:${scope ?? ''}/${address}`);
    const list = this.#ptr.get(address);
    return list !== undefined && inView(list, scope);
  }

  /**
   * The merged services, in every view, with a healthy instance at `address` (canonical text): a PTR (§3.8).
   * Unscoped views come first. Empty when none.
   */
  servicesAt(address: string): readonly MergedService[] {
    if (this.#track !== null) this.#track.add(`p:${address}`);
    // While a first sync is staged, a PTR could list some of an address's services and not yet the others: none
    // (the answer is SERVFAIL, a backend is syncing, §5.4) until the whole view is in.
    if (this.#staging !== null) return NO_SERVICES;
    return this.#ptr.get(address) ?? NO_SERVICES;
  }

  /** Whether some healthy address has a reverse name strictly below `name` (`0.10.in-addr.arpa`, §2.5). */
  hasReverseBelow(name: string): boolean {
    if (this.#track !== null) this.#track.add(`r:${name}`);
    if (this.#staging !== null) return false; // as servicesAt: SERVFAIL while a first sync is staged
    return (this.#revNames.get(name) ?? 0) > 0;
  }

  /** True while some backend that could own names in `scope` has not completed its first sync (§5.4). */
  pending(scope: string | null): boolean {
    if (this.#unsynced === 0) return false;
    for (const b of this.#backends.values()) if (b.state === 'syncing' && b.ownsScope(scope)) return true;
    return false;
  }

  /** True while any backend has not completed its first sync. */
  get anyPending(): boolean {
    return this.#unsynced > 0;
  }

  // ---- views for operations (not the hot path) ----

  status(): BackendStatus[] {
    const out: BackendStatus[] = [];
    for (const b of this.#backends.values()) {
      out.push({
        name: b.name,
        type: b.type,
        state: b.state,
        lastSyncMs: b.lastSyncMs,
        sinceMs: b.sinceMs,
        lastError: b.lastError,
        services: b.snapshot?.services.size ?? 0,
        instances: b.instances,
      });
    }
    return out;
  }

  /** Every merged service: unscoped view first, then each scope. */
  *services(): Generator<MergedService> {
    yield* this.#unscoped.values();
    for (const m of this.#scoped.values()) yield* m.values();
  }

  // ---- merging ----

  #recomputeScoped(scope: string, name: string): void {
    const key = serviceKey(scope, name);
    const parts: [BackendEntry, Service][] = [];
    for (const b of this.#backends.values()) {
      const svc = b.snapshot?.services.get(key);
      if (svc) parts.push([b, svc]);
    }
    let byName = this.#scoped.get(scope);
    const old = byName?.get(name);
    const merged = parts.length === 0 ? undefined : this.#merge(name, scope, parts);
    if (this.#changes !== null && !sameAnswers(old, merged)) this.#changes.add(`s:${scope}/${name}`);
    if (merged) {
      if (!byName) {
        this.#scoped.set(scope, (byName = new Map()));
        this.#changed(`S:${scope}`);
      }
      byName.set(name, merged);
    } else if (byName) {
      byName.delete(name);
      if (byName.size === 0) {
        this.#scoped.delete(scope);
        this.#changed(`S:${scope}`);
      }
    }
    this.#reindexTags(scope, old, merged);
    this.#reindexPtr(old, merged);
    if (old) this.#releaseTags(old.tags);
  }

  #recomputeUnscoped(name: string): void {
    const parts: [BackendEntry, Service][] = [];
    for (const b of this.#backends.values()) {
      const ds = b.snapshot?.defaultScope;
      if (ds == null) continue;
      const svc = b.snapshot!.services.get(serviceKey(ds, name));
      if (svc) parts.push([b, svc]);
    }
    const old = this.#unscoped.get(name);
    const merged = parts.length === 0 ? undefined : this.#merge(name, null, parts);
    const hadAny = this.#unscoped.size > 0;
    if (merged) this.#unscoped.set(name, merged);
    else this.#unscoped.delete(name);
    if (this.#changes !== null && !sameAnswers(old, merged)) this.#changes.add(`s:/${name}`);
    if (hadAny !== this.#unscoped.size > 0) this.#changed('U');
    this.#reindexTags('', old, merged);
    this.#reindexPtr(old, merged);
    if (old) this.#releaseTags(old.tags);
  }

  /** Merge one name's services from several backends: instances de-duplicated by address + ports (§6.2). */
  #merge(name: string, scope: string | null, parts: [BackendEntry, Service][]): MergedService {
    if (parts.length === 1) {
      const [backend, svc] = parts[0]!;
      // The backend's own instances array, shared (no copy): a MergedService adds ~100 B, not a copy per instance.
      return { name, scope, ttlSeconds: svc.ttlSeconds, instances: svc.instances, tags: this.#internTags(tagsOf(svc, new Set())), backends: backend.only };
    }
    const seen = new Set<string>();
    const instances: Instance[] = [];
    let ttl: number | undefined;
    const backends: string[] = [];
    const tags = new Set<string>();
    for (const [backend, svc] of parts) {
      backends.push(backend.name);
      tagsOf(svc, tags);
      if (svc.ttlSeconds !== undefined) ttl = ttl === undefined ? svc.ttlSeconds : Math.min(ttl, svc.ttlSeconds);
      for (const inst of svc.instances) {
        const sig = `${inst.address}|${inst.ports.map((p) => `${p.port}/${p.protocol}`).sort().join(',')}`;
        if (seen.has(sig)) continue;
        seen.add(sig);
        instances.push(inst);
      }
    }
    return { name, scope, ttlSeconds: ttl, instances, tags: this.#internTags(tags), backends };
  }

  /** The shared set equal to `tags` (interned by content, reference counted); NO_TAGS for none. */
  #internTags(tags: Set<string>): ReadonlySet<string> {
    if (tags.size === 0) return NO_TAGS;
    const key = tagKey(tags);
    const had = this.#tagSets.get(key);
    if (had) {
      had.refs++;
      return had.set;
    }
    this.#tagSets.set(key, { set: tags, refs: 1 });
    return tags;
  }

  /** A MergedService holding `tags` was replaced or removed. */
  #releaseTags(tags: ReadonlySet<string>): void {
    if (tags.size === 0) return;
    const key = tagKey(tags);
    const had = this.#tagSets.get(key);
    if (had && --had.refs === 0) this.#tagSets.delete(key);
  }

  /**
   * PTR index (§3.8) and, by the scopes of its lists, the `.addr` names (§2.4): swap `old` for `now` under each
   * of their addresses (one view: both have the same scope). Costs the instances of the one changed service.
   * Lists are immutable and shared: each distinct list before the change maps to one new list, so the addresses
   * of one service keep sharing theirs. `p:A` changes only when A's PTR answer can: A came or went in this service,
   * or the names of its instances at A did; `a:V/A` when A enters or leaves view V; `r:R` when R gains its first
   * address or loses its last.
   */
  #reindexPtr(old: MergedService | undefined, now: MergedService | undefined): void {
    const any = old ?? now;
    if (any === undefined) return;
    const scope = any.scope; // null (the unscoped view) is a view too: not `old?.scope ?? now?.scope`
    const track = this.#changes !== null;
    const before = old ? namesByAddress(old, track) : NO_NAMES;
    const after = now ? namesByAddress(now, track) : NO_NAMES;
    // One memo per kind of step: remove `old`, add `now`, or both (the address stays, in this service).
    const removed = new Map<readonly MergedService[], readonly MergedService[]>();
    const added = new Map<readonly MergedService[], readonly MergedService[]>();
    const both = new Map<readonly MergedService[], readonly MergedService[]>();
    for (const [address, sig] of before) {
      const stays = after.has(address);
      this.#ptrStep(address, old, stays ? now : undefined, stays ? both : removed, scope);
      if (track && after.get(address) !== sig) this.#changes!.add(`p:${address}`);
    }
    for (const address of after.keys()) {
      if (before.has(address)) continue;
      this.#ptrStep(address, undefined, now, added, scope);
      if (track) this.#changes!.add(`p:${address}`);
    }
  }

  #ptrStep(address: string, remove: MergedService | undefined, add: MergedService | undefined, memo: Map<readonly MergedService[], readonly MergedService[]>, scope: string | null): void {
    const cur = this.#ptr.get(address) ?? NO_SERVICES;
    let next = memo.get(cur);
    if (next === undefined) {
      next = ptrList(cur, remove, add);
      memo.set(cur, next);
    }
    if (next.length === 0) {
      this.#ptr.delete(address);
      if (cur.length > 0) this.#reverseCount(address, -1);
    } else {
      this.#ptr.set(address, next);
      if (cur.length === 0) this.#reverseCount(address, 1);
    }
    if (this.#changes !== null && inView(cur, scope) !== inView(next, scope)) this.#changes.add(`a:${scope ?? ''}/${address}`);
  }

  /**
   * Count an address in or out of its reverse name's parent (the /24's name, or the /124's nibble name) and, when
   * that name gains its first address or loses its last, count the parent in or out of its own parent, up to
   * `in-addr.arpa`/`ip6.arpa`: each name's count is how many names (or addresses) just below it have an address
   * (§2.5). A first sync costs one map update per address, not one per ancestor.
   */
  #reverseCount(address: string, delta: 1 | -1): void {
    let name = parentReverseName(address);
    for (;;) {
      const c = (this.#revNames.get(name) ?? 0) + delta;
      if (c <= 0) this.#revNames.delete(name);
      else this.#revNames.set(name, c);
      if (!(c <= 0 || (c === 1 && delta === 1))) return; // still some below, and was before: its parent unchanged
      this.#changed(`r:${name}`);
      const up = name.slice(name.indexOf('.') + 1);
      if (up === 'arpa') return;
      name = up;
    }
  }

  #reindexTags(view: string, old: MergedService | undefined, now: MergedService | undefined): void {
    if (old?.tags === now?.tags) return;
    let counts = this.#tagViews.get(view);
    if (!counts) this.#tagViews.set(view, (counts = new Map()));
    if (old) for (const t of old.tags) {
      const c = (counts.get(t) ?? 0) - 1;
      if (c <= 0) {
        counts.delete(t);
        this.#changed(`t:${view}/${t}`);
      } else counts.set(t, c);
    }
    if (now) for (const t of now.tags) {
      const c = counts.get(t) ?? 0;
      if (c === 0) this.#changed(`t:${view}/${t}`);
      counts.set(t, c + 1);
    }
    if (counts.size === 0) this.#tagViews.delete(view);
  }

  #bump(): void {
    this.#generation++;
    this.#log.push(this.#changes);
    if (this.#log.length > 2 * CHANGE_LOG_GENERATIONS) {
      const drop = this.#log.length - CHANGE_LOG_GENERATIONS;
      this.#log.splice(0, drop);
      this.#logFirst += drop;
    }
    this.#changes = new Set();
    for (const l of this.#listeners) l(this.#generation);
  }
}

/**
 * Whether a recomputed name answers exactly as before: the very same instances array (immutable; a backend whose
 * Service changed only in what DNS does not read, Service.unhealthy, keeps it), TTL and tags. Then its cached
 * answers stay (`s:` is not logged as changed); the generation still moves, for /v1/services readers.
 */
function sameAnswers(old: MergedService | undefined, now: MergedService | undefined): boolean {
  if (old === undefined || now === undefined || old.instances !== now.instances || old.ttlSeconds !== now.ttlSeconds) return false;
  if (old.tags === now.tags) return true;
  if (old.tags.size !== now.tags.size) return false;
  for (const t of old.tags) if (!now.tags.has(t)) return false;
  return true;
}

const NO_TAGS: ReadonlySet<string> = new Set();
const NO_SERVICES: readonly MergedService[] = Object.freeze([]);
const NO_NAMES: ReadonlyMap<string, string> = new Map();

/**
 * Each address of the service → the names of its instances there that a PTR can give (sorted, `|`-joined; ''
 * for none): a name shadowed by one of the service's tags is left out (tags win, §2.6), as the answer does.
 * `names` false (nothing records change keys, e.g. a first sync): the addresses only, every value ''.
 */
function namesByAddress(svc: MergedService, names: boolean): Map<string, string> {
  const out = new Map<string, string>();
  for (const i of svc.instances) {
    if (!names) {
      out.set(i.address, '');
      continue;
    }
    const had = out.get(i.address);
    const n = i.name !== undefined && !svc.tags.has(i.name) ? i.name : '';
    if (had === undefined) out.set(i.address, n);
    else if (n !== '' && !had.split('|').includes(n)) out.set(i.address, had === '' ? n : [...had.split('|'), n].sort().join('|'));
  }
  return out;
}

/** `cur` without `remove`, then with `add` (unscoped views first, scopes after, in arrival order): a new exact-size array. */
function ptrList(cur: readonly MergedService[], remove: MergedService | undefined, add: MergedService | undefined): readonly MergedService[] {
  let n = 0;
  for (const m of cur) if (m !== remove) n++;
  if (add !== undefined) n++;
  if (n === 0) return NO_SERVICES;
  const out = new Array<MergedService>(n);
  let k = 0;
  if (add !== undefined && add.scope === null) out[k++] = add;
  for (const m of cur) if (m !== remove) out[k++] = m;
  if (add !== undefined && add.scope !== null) out[k++] = add;
  return out;
}

/** Whether a PTR list has a service of the view (null: the unscoped one): `.addr` names in it exist (§2.4). */
function inView(list: readonly MergedService[], scope: string | null): boolean {
  for (const m of list) if (m.scope === scope) return true;
  return false;
}

/** The reverse name one label above an address's own (`0.0.10.in-addr.arpa` for 10.0.0.1). */
function parentReverseName(address: string): string {
  if (!address.includes(':')) {
    const a = address.indexOf('.');
    const b = address.indexOf('.', a + 1);
    const c = address.indexOf('.', b + 1);
    return `${address.slice(b + 1, c)}.${address.slice(a + 1, b)}.${address.slice(0, a)}.in-addr.arpa`;
  }
  return reverseName(address, 6).slice(2);
}

/** A tag set's interning key: its tags sorted, '\n'-joined (tags are DNS labels: no newline). */
function tagKey(tags: ReadonlySet<string>): string {
  if (tags.size === 1) for (const t of tags) return t;
  return [...tags].sort().join('\n');
}

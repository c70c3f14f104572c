// store/replication: keeps store replicas (one per worker thread, `workers: N`) identical to the main store.
// The main thread observes its store and turns each event into a structured-cloneable message; a replica applies
// them in order to its own Store. The pool delivers the messages of one main-thread turn as one batch, so a
// replica never shows a state between two events of one step (a replace and its apply, an unregister and a
// register). A change of one service ships that service only (the snapshot's `changed` hint), so the cost of
// replication follows the change, not the catalogue.

import { claimOwns, type ScopeClaim, type Service, type ServiceSnapshot } from '../model/service.ts';
import type { Store, StoreEvent } from './store.ts';

export type { ScopeClaim };

export type ReplicaMessage =
  | { readonly t: 'register'; readonly name: string; readonly type: string; readonly claim: ScopeClaim }
  | { readonly t: 'claim'; readonly name: string; readonly claim: ScopeClaim }
  /** A new instance took over the name (make-before-break reload); its first data follows as an 'apply'. */
  | { readonly t: 'replace'; readonly name: string; readonly type: string; readonly claim: ScopeClaim }
  | { readonly t: 'unregister'; readonly name: string }
  | { readonly t: 'fail'; readonly name: string; readonly error: { readonly code: string; readonly message: string } }
  | {
      readonly t: 'apply';
      readonly name: string;
      readonly defaultScope: string | null;
      /** The whole map, or ... */
      readonly services?: readonly (readonly [string, Service])[];
      /** ... only what changed since the previous apply (null: removed). */
      readonly changes?: readonly (readonly [string, Service | null])[];
    };

/** Claimed for a backend registered without a claim: everything (SERVFAIL is the safe side of §5.4). */
const CLAIM_ALL: ScopeClaim = { unscoped: true, any: true, scopes: [] };

/** Main-thread side. */
export class StoreReplicator {
  readonly #store: Store;
  readonly #claims = new Map<string, string>();

  constructor(store: Store) {
    this.#store = store;
  }

  claimOf(name: string): ScopeClaim {
    return this.#store.claimOf(name) ?? CLAIM_ALL;
  }

  /** Messages that bring a fresh replica to the store's current state. */
  initial(): ReplicaMessage[] {
    const out: ReplicaMessage[] = [];
    for (const st of this.#store.status()) {
      out.push({ t: 'register', name: st.name, type: st.type, claim: this.claimOf(st.name) });
      const snap = this.#store.snapshotOf(st.name);
      if (snap) out.push(full(st.name, snap));
      if (st.state === 'stale' && st.lastError) out.push({ t: 'fail', name: st.name, error: st.lastError });
    }
    return out;
  }

  /** Forward every later change to `send`. Returns the unsubscribe function. */
  subscribe(send: (m: ReplicaMessage) => void): () => void {
    let prev = new Map<string, ServiceSnapshot | null>();
    for (const st of this.#store.status()) prev.set(st.name, this.#store.snapshotOf(st.name));
    const off = this.#store.observe((e: StoreEvent) => {
      switch (e.kind) {
        case 'register': {
          prev.set(e.name, null);
          const claim = this.claimOf(e.name);
          this.#claims.set(e.name, JSON.stringify(claim));
          send({ t: 'register', name: e.name, type: e.type, claim });
          break;
        }
        case 'replace': {
          // `prev` keeps the old instance's snapshot: the apply that follows ships the difference from it.
          const claim = this.claimOf(e.name);
          this.#claims.set(e.name, JSON.stringify(claim));
          send({ t: 'replace', name: e.name, type: e.type, claim });
          break;
        }
        case 'unregister':
          prev.delete(e.name);
          send({ t: 'unregister', name: e.name });
          break;
        case 'apply': {
          const before = prev.get(e.name) ?? null;
          prev.set(e.name, e.snapshot);
          send(before && before.defaultScope === e.snapshot.defaultScope ? delta(e.name, before, e.snapshot) : full(e.name, e.snapshot));
          break;
        }
        case 'fail':
          send({ t: 'fail', name: e.name, error: e.error });
          break;
      }
      // A syncing backend may learn what it owns while it syncs (Consul learns the agent's datacenter).
      for (const st of this.#store.status()) {
        if (st.state !== 'syncing') continue;
        const c = this.claimOf(st.name);
        const key = JSON.stringify(c);
        if (this.#claims.get(st.name) !== key) {
          this.#claims.set(st.name, key);
          send({ t: 'claim', name: st.name, claim: c });
        }
      }
    });
    return () => {
      off();
      prev = new Map();
    };
  }
}

function full(name: string, s: ServiceSnapshot): ReplicaMessage {
  return { t: 'apply', name, defaultScope: s.defaultScope, services: [...s.services] };
}

/** Only the services that differ: the backend's hint, else an identity diff (cheap; no deep compare). */
function delta(name: string, before: ServiceSnapshot, s: ServiceSnapshot): ReplicaMessage {
  let keys: Iterable<string>;
  if (s.changed) keys = s.changed;
  else {
    const k: string[] = [];
    for (const [key, svc] of s.services) if (before.services.get(key) !== svc) k.push(key);
    for (const key of before.services.keys()) if (!s.services.has(key)) k.push(key);
    keys = k;
  }
  const changes: (readonly [string, Service | null])[] = [];
  for (const k of keys) {
    const svc = s.services.get(k) ?? null;
    if (!onlyUnhealthyChanged(before.services.get(k), svc)) changes.push([k, svc]);
  }
  return { t: 'apply', name, defaultScope: s.defaultScope, changes };
}

/**
 * A new Service object that serves the very same arrays as the old one: only Service.unhealthy changed, which
 * replicas (DNS workers) do not use. Not shipped, so the replica's cached answers of that name stay.
 */
function onlyUnhealthyChanged(old: Service | undefined, now: Service | null): boolean {
  return old !== undefined && now !== null && old !== now && old.instances === now.instances && old.knownTags === now.knownTags && old.ttlSeconds === now.ttlSeconds;
}

/** Worker side: applies messages to its own Store. */
export class StoreReplica {
  readonly store: Store;
  readonly #maps = new Map<string, Map<string, Service>>();
  readonly #claims = new Map<string, ScopeClaim>();

  constructor(store: Store) {
    this.store = store;
  }

  apply(m: ReplicaMessage): void {
    switch (m.t) {
      case 'register':
        this.#claims.set(m.name, m.claim);
        this.store.register(m.name, m.type, (scope) => {
          const c = this.#claims.get(m.name);
          return c !== undefined && claimOwns(c, scope);
        });
        break;
      case 'replace':
        this.#claims.set(m.name, m.claim);
        this.store.retarget(m.name, m.type, (scope) => {
          const c = this.#claims.get(m.name);
          return c !== undefined && claimOwns(c, scope);
        });
        break;
      case 'claim':
        this.#claims.set(m.name, m.claim);
        this.store.invalidate(); // SERVFAILs cached under the old claim must not outlive it
        break;
      case 'unregister':
        this.store.unregister(m.name);
        this.#maps.delete(m.name);
        this.#claims.delete(m.name);
        break;
      case 'fail':
        this.store.fail(m.name, m.error);
        break;
      case 'apply': {
        if (m.services) {
          const map = new Map(m.services);
          this.#maps.set(m.name, map);
          this.store.apply(m.name, { services: map, defaultScope: m.defaultScope });
        } else {
          // The replica's own map, changed in place, with the values it held before: O(changes) however many
          // services there are (issue 11 #3). Nobody else reads this store's snapshots.
          let map = this.#maps.get(m.name);
          if (map === undefined) this.#maps.set(m.name, (map = new Map()));
          const changed = new Set<string>();
          const before = new Map<string, Service>();
          for (const [k, svc] of m.changes ?? []) {
            if (!changed.has(k)) {
              changed.add(k);
              const old = map.get(k);
              if (old !== undefined) before.set(k, old);
            }
            if (svc) map.set(k, svc);
            else map.delete(k);
          }
          this.store.applyInPlace(m.name, { services: map, defaultScope: m.defaultScope, changed }, before);
        }
        break;
      }
    }
  }
}

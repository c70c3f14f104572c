// backends/supervisor: the sink a backend reports into. Folds snapshots into the store, records failures, and
// logs each state change exactly once (syncing → synced → stale → synced), never each repeated failure.

import type { Logger } from 'pino';
import type { Store } from '../store/store.ts';
import { receiptClock, type BackendError, type BackendSink } from './backend.ts';

export interface SupervisorHooks {
  /** A snapshot was folded in: how long the store swap took (ms), for the propagation histogram. */
  onSnapshot?(backend: string, swapMs: number): void;
}

export function supervisedSink(name: string, store: Store, logger: Logger, now: () => number, hooks: SupervisorHooks = {}): BackendSink {
  const startedMs = now();
  let lastErrorCode: string | null = null;
  const statusOf = () => store.status().find((s) => s.name === name);
  // A backend whose other watches still fail sends a snapshot and then the same error again, in one turn of the
  // event loop (Consul, Kubernetes). That is one incident, not a recovery: the "recovered" line waits for the end
  // of the turn and is dropped if the same error follows, and "stale since" keeps its first time.
  let recovering: { sinceMs: number } | null = null;
  return {
    snapshot(snapshot, receivedAtMs) {
      const receivedAt = receivedAtMs ?? receiptClock();
      const before = statusOf();
      const gen = store.generation;
      const t0 = performance.now();
      store.apply(name, snapshot);
      hooks.onSnapshot?.(name, performance.now() - t0);
      // Served data changed: the first answer of the new generation observes the propagation (issue 14 #4). Not
      // the first sync: that is startup, timed by the backend_synced log line, not a change a client waits for.
      if (store.generation !== gen && before?.state !== 'syncing') store.received(name, receivedAt);
      const st = statusOf();
      if (before?.state === 'syncing') {
        logger.info({ event: 'backend_synced', services: st?.services, instances: st?.instances, ms: now() - startedMs }, 'backend synced');
        lastErrorCode = null;
      } else if (before?.state === 'stale' && recovering === null) {
        const r = (recovering = { sinceMs: before.sinceMs });
        queueMicrotask(() => {
          if (recovering !== r) return; // the same error came back in this turn: still stale
          recovering = null;
          lastErrorCode = null;
          const now2 = statusOf();
          logger.info({ event: 'backend_recovered', services: now2?.services, instances: now2?.instances }, 'backend recovered');
        });
      }
    },
    error(err: BackendError) {
      const before = statusOf()?.state;
      if (recovering !== null && err.code === lastErrorCode) {
        store.fail(name, err, recovering.sinceMs);
        recovering = null;
        return;
      }
      recovering = null;
      store.fail(name, err);
      const ctx = { event: 'backend_error', code: err.code, details: err.details, err: err.message };
      if (before === 'synced') {
        logger.error({ ...ctx, event: 'backend_stale' }, 'backend failed; serving last known data');
      } else if (err.code !== lastErrorCode) {
        logger[before === 'syncing' ? 'error' : 'warn'](ctx, before === 'syncing' ? 'backend not synced yet' : 'backend still failing');
      }
      lastErrorCode = err.code;
    },
  };
}

// backends/supervisor: the sink a backend reports into. Folds snapshots into the store, records failures, and
// logs each state change exactly once (syncing → synced → stale → synced), never each repeated failure.

import type { Logger } from 'pino';
import type { Store } from '../store/store.ts';
import type { BackendError, BackendSink } from './backend.ts';

export interface SupervisorHooks {
  /** A snapshot was folded in: how long the store swap took (ms), for the propagation histogram. */
  onSnapshot?(backend: string, swapMs: number): void;
}

export function supervisedSink(name: string, store: Store, logger: Logger, now: () => number, hooks: SupervisorHooks = {}): BackendSink {
  const startedMs = now();
  let lastErrorCode: string | null = null;
  return {
    snapshot(snapshot) {
      const before = store.status().find((s) => s.name === name)?.state;
      const t0 = performance.now();
      store.apply(name, snapshot);
      hooks.onSnapshot?.(name, performance.now() - t0);
      const st = store.status().find((s) => s.name === name);
      if (before === 'syncing') {
        logger.info({ event: 'backend_synced', services: st?.services, instances: st?.instances, ms: now() - startedMs }, 'backend synced');
      } else if (before === 'stale') {
        logger.info({ event: 'backend_recovered', services: st?.services, instances: st?.instances }, 'backend recovered');
      }
      lastErrorCode = null;
    },
    error(err: BackendError) {
      const before = store.status().find((s) => s.name === name)?.state;
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

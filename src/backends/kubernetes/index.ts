// backends/kubernetes: the `type: kubernetes` backend — serves the ready endpoints of Services from
// discovery.k8s.io/v1 EndpointSlices (default) or legacy core/v1 Endpoints (`api: endpoints`).
//
// Watches: one list+watch (client-node ListWatch informer) cluster-wide, or one per `namespaces` entry;
//   bookmarks requested; 410 Expired/Gone (HTTP status or in-stream ERROR) → relist without dropping data;
//   other failures → report (stale, last known set kept, §6.3) and restart with Backoff. LISTs are paged
//   (limit/continue, watcher.ts LIST_PAGE_SIZE); client-node is loaded without its generated API (client.ts).
// Config: api, kubeconfig | $KUBECONFIG | in-cluster service account, context, namespaces, defaultScope,
//   labelSelector, resyncMs (see config.ts).
// Readiness: synced once every watched collection completed its first LIST; 401/403 keep it not ready and the
//   error names the missing verb/resource (SVCDNS_BACKEND_FORBIDDEN).
// Mapping: scope = namespace, name = Service name, port names = tags and SRV ports (§2.2, §2.3b, §6.1).
// RBAC: exactly rbacRules(api) from rbac.ts — deploy/kubernetes/ is tested against it.

import type { Backend, BackendCheckContext, BackendContext, BackendProblem } from '../backend.ts';
import { BackendError } from '../backend.ts';
import { configSchema, type KubernetesBackendConfig } from './config.ts';
import { chooseSource, loadKubeConfig } from './kubeconfig.ts';
import { KubernetesBackend, type WatcherOptions } from './watcher.ts';

export { configSchema };
export type { KubernetesBackendConfig };
export { rbacRules, resourceFor, VERBS } from './rbac.ts';

/**
 * Build the backend. Throws BackendError SVCDNS_BACKEND_CONFIG when no API source can exist at all (no
 * `kubeconfig`, no $KUBECONFIG, not in a pod) — decidable from config and env, so it fails at startup.
 * File/token problems are reported through the sink at start() and retried (mounted secrets may appear late).
 */
export function create(config: KubernetesBackendConfig, ctx: BackendContext, opts: WatcherOptions = {}): Backend {
  const source = chooseSource(config, ctx.configDir, ctx.env);
  return new KubernetesBackend(config, source, ctx.logger, ctx.metrics ? { metrics: ctx.metrics, ...opts } : opts);
}

/**
 * What startup checks before it watches. Permanent (startup exits 2): no API source at all (no `kubeconfig`, no
 * $KUBECONFIG, not in a pod). With `full` (check-config) also the kubeconfig file and context, or the in-cluster
 * service-account token, which the running backend retries (mounted secrets may appear late).
 */
export async function check(config: KubernetesBackendConfig, ctx: BackendCheckContext): Promise<BackendProblem[]> {
  const problem = (e: unknown, permanent: boolean, key?: string): BackendProblem => {
    const err = e instanceof BackendError ? e : new BackendError('SVCDNS_BACKEND_CONFIG', String(e));
    return { code: err.code, message: err.message, permanent, ...(key !== undefined ? { key } : {}) };
  };
  let source;
  try {
    source = chooseSource(config, ctx.configDir, ctx.env);
  } catch (e) {
    return [problem(e, true)];
  }
  if (!ctx.full) return [];
  try {
    loadKubeConfig(source, config.context);
    return [];
  } catch (e) {
    const key = e instanceof BackendError && e.details['context'] !== undefined ? 'context' : source.kind === 'file' && source.from === 'config' ? 'kubeconfig' : undefined;
    return [problem(e, false, key)];
  }
}

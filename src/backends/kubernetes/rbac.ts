// backends/kubernetes/rbac: the API permissions this backend needs, per `api` mode — the single source the
// ClusterRole in deploy/kubernetes/ is checked against (test/unit/kubernetes-rbac.test.ts).

export interface ApiResource {
  /** API group; '' is the core group. */
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly kind: string;
}

export const ENDPOINT_SLICES: ApiResource = {
  group: 'discovery.k8s.io',
  version: 'v1',
  resource: 'endpointslices',
  kind: 'EndpointSlice',
};

export const ENDPOINTS: ApiResource = { group: '', version: 'v1', resource: 'endpoints', kind: 'Endpoints' };

/** The only verbs the backend uses: an informer LISTs then WATCHes. Never get/create/update. */
export const VERBS = ['list', 'watch'] as const;

export interface RbacRule {
  readonly apiGroup: string;
  readonly resource: string;
  readonly verbs: readonly string[];
}

export type ApiMode = 'endpointslices' | 'endpoints';

/** The resource an `api` mode reads. */
export function resourceFor(api: ApiMode): ApiResource {
  return api === 'endpoints' ? ENDPOINTS : ENDPOINT_SLICES;
}

/** Every (group, resource, verbs) the backend requests in this mode: what its ClusterRole must grant, exactly. */
export function rbacRules(api: ApiMode): readonly RbacRule[] {
  const r = resourceFor(api);
  return [{ apiGroup: r.group, resource: r.resource, verbs: [...VERBS] }];
}

/** URL path of the collection (cluster-wide when namespace is null). */
export function collectionPath(r: ApiResource, namespace: string | null): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  return namespace === null ? `${base}/${r.resource}` : `${base}/namespaces/${namespace}/${r.resource}`;
}

/** The human hint for a 403: which grant is missing. */
export function grantHint(r: ApiResource): string {
  return `grant ${VERBS.join(',')} on ${r.group === '' ? 'core' : r.group}/${r.resource}`;
}

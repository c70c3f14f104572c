// backends/kubernetes/client: the parts of @kubernetes/client-node this backend uses — KubeConfig, Watch,
// ListWatch and the HTTP request plumbing — loaded WITHOUT the package's generated API (issue 11 item 9).
//
// Why: the package root (and even dist/config.js, where KubeConfig lives) statically imports dist/gen/index.js,
// i.e. every generated API class and model: ~0.5 s of compile+evaluate on an idle machine (14 s on a loaded one)
// and ~50 MB of RSS. KubeConfig needs only createConfiguration/ServerConfiguration from it (for makeApiClient,
// which we never call), and ListWatch needs ObjectSerializer only to "serialize" its selector strings (identity
// for strings). A module resolve hook (node:module registerHooks, in-thread, synchronous) answers exactly those
// two imports — and only when made by those two client-node files — with a small module; every other import in
// the process resolves as usual. The LIST itself is done here with the package's own HTTP layer instead of the
// generated DiscoveryV1Api/CoreV1Api (which would also deserialize every object into model classes).
// Measured (2-core VM, loaded): import 200-380 ms and 83 MB RSS, against 570-780 ms and 133 MB for the package.
// If a client-node upgrade makes config.js or cache.js import another name from these modules, linking fails
// at start-up with a SyntaxError naming it (test/unit/kubernetes-client.test.ts catches it first).

import { createRequire, registerHooks } from 'node:module';

/** file:// URL of client-node's dist/ directory (the package has no exports map: deep imports are allowed). */
const DIST = new URL('./', import.meta.resolve('@kubernetes/client-node')).href;

/** `${importer URL}\0${specifier}` → source of the module that replaces the import. */
const REDIRECTS: ReadonlyMap<string, string> = new Map([
  [
    `${DIST}config.js\0./gen/index.js`,
    `export { createConfiguration } from ${JSON.stringify(`${DIST}gen/configuration.js`)};\n` +
      `export { ServerConfiguration } from ${JSON.stringify(`${DIST}gen/servers.js`)};\n`,
  ],
  // ListWatch calls ObjectSerializer.serialize(selector, 'string') only, which returns strings unchanged.
  [`${DIST}cache.js\0./serializer.js`, 'export const ObjectSerializer = { serialize: (data) => data };\n'],
]);

registerHooks({
  resolve(specifier, context, nextResolve) {
    const source = context.parentURL === undefined ? undefined : REDIRECTS.get(`${context.parentURL}\0${specifier}`);
    if (source !== undefined) return { url: `data:text/javascript,${encodeURIComponent(source)}`, shortCircuit: true };
    return nextResolve(specifier, context);
  },
});

const [config, watch, cache, http, fetchLib, exception] = await Promise.all([
  import('@kubernetes/client-node/dist/config.js'),
  import('@kubernetes/client-node/dist/watch.js'),
  import('@kubernetes/client-node/dist/cache.js'),
  import('@kubernetes/client-node/dist/gen/http/http.js'),
  import('@kubernetes/client-node/dist/gen/http/isomorphic-fetch.js'),
  import('@kubernetes/client-node/dist/gen/apis/exception.js'),
]);

export const KubeConfig = config.KubeConfig;
export type KubeConfig = InstanceType<typeof config.KubeConfig>;
export const Watch = watch.Watch;
export type Watch = InstanceType<typeof watch.Watch>;
export const ListWatch = cache.ListWatch;
export type ListWatch<T extends KubernetesObject> = InstanceType<typeof cache.ListWatch<T>>;
export const ApiException = exception.ApiException;

export type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node/dist/types.js';
import type { KubernetesObject } from '@kubernetes/client-node/dist/types.js';

/** Accept header of the generated list calls (JSON; the server may still answer a Status as JSON). */
const ACCEPT = 'application/json, */*;q=0.8';

/** The User-Agent the generated API clients send (KubeConfig.makeApiClient's middleware), for API audit logs. */
const USER_AGENT = `kubernetes-client-javascript/${(createRequire(import.meta.url)('@kubernetes/client-node/package.json') as { version?: string }).version ?? ''}`;

/**
 * GET `path` with `query` on the current cluster, authenticated exactly as client-node's generated API does
 * (kc.applySecurityAuthentication: TLS, bearer token, auth plugins, proxy dispatcher). Resolves with the body
 * text on 200; rejects with an ApiException (numeric `code`, the body) otherwise, like the generated calls.
 */
export async function getText(kc: KubeConfig, path: string, query: Readonly<Record<string, string | undefined>>): Promise<string> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('No currently active cluster');
  const url = new URL(cluster.server + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  const ctx = new http.RequestContext(url.toString(), http.HttpMethod.GET);
  ctx.setHeaderParam('Accept', ACCEPT);
  ctx.setHeaderParam('User-Agent', USER_AGENT);
  await kc.applySecurityAuthentication(ctx);
  const res = await new fetchLib.IsomorphicFetchHttpLibrary().send(ctx).toPromise();
  const body = await res.body.text();
  if (res.httpStatusCode !== 200) throw new ApiException(res.httpStatusCode, `HTTP ${res.httpStatusCode}`, body, res.headers);
  return body;
}

// backends/kubernetes/client: the parts of @kubernetes/client-node this backend uses — KubeConfig (kubeconfig and
// in-cluster loading, every auth plugin, TLS, proxies) and ListWatch (the informer) — loaded WITHOUT the
// package's generated API and without undici (issue 11 items 4 and 9).
//
// Why: the package root (and even dist/config.js, where KubeConfig lives) statically imports dist/gen/index.js,
// i.e. every generated API class and model: ~0.5 s of compile+evaluate on an idle machine (14 s on a loaded one)
// and ~50 MB of RSS. KubeConfig needs only createConfiguration/ServerConfiguration from it (for makeApiClient,
// which we never call), and ListWatch needs ObjectSerializer only to "serialize" its selector strings (identity
// for strings). client-node 2.x also makes its requests with the npm `undici` package (1.2 MB of JavaScript,
// ~23 MB of RSS once loaded, on top of the HTTP client Node already has): config.js imports it only to build
// fetch dispatchers (createDispatcher, for applySecurityAuthentication), and watch.js and the generated HTTP
// layer to fetch. So the two requests this backend makes, the paged LIST and the WATCH stream, are made here
// with node:https/node:http, authenticated by KubeConfig.applyToHTTPSOptions (the same TLS files, tokens, exec and
// OIDC plugins, impersonation, basic auth and proxy agents as the package's own requests), and `Watch` below is a
// drop-in for client-node's (same contract: ListWatch drives it). A module resolve hook (node:module
// registerHooks, in-thread, synchronous) answers exactly the imports we replace — and only when made by those
// client-node files — with a small module; every other import in the process resolves as usual.
// Measured (2-core VM): the client modules cost 48 MB of RSS with undici, and see bench/kubernetes-memory.ts.
// If a client-node upgrade makes config.js or cache.js import another name from these modules, linking fails
// at start-up with a SyntaxError naming it (test/unit/kubernetes-client.test.ts catches it first).

import http from 'node:http';
import https from 'node:https';
import { createRequire, registerHooks } from 'node:module';

/** file:// URL of client-node's dist/ directory (the package has no exports map: deep imports are allowed). */
const DIST = new URL('./', import.meta.resolve('@kubernetes/client-node')).href;

/** `${importer URL}\0${specifier}` → source of the module that replaces the import. */
/** A stand-in for a client-node export this backend never calls: it says so if a future code path ever does. */
const notLoaded = (names: readonly string[]) =>
  'class NotLoaded { constructor() { throw new Error("svcdns: this part of client-node is not loaded (kubernetes/client.ts)"); } }\n' +
  'function notLoaded() { throw new Error("svcdns: this part of client-node is not loaded (kubernetes/client.ts)"); }\n' +
  names.map((n) => (n[0] === n[0]!.toUpperCase() ? `export { NotLoaded as ${n} };` : `export { notLoaded as ${n} };`)).join('\n') + '\n';

const REDIRECTS: ReadonlyMap<string, string> = new Map([
  // KubeConfig uses these two only in makeApiClient (the generated API, and with it the fetch layer).
  [`${DIST}config.js\0./gen/index.js`, notLoaded(['createConfiguration', 'ServerConfiguration'])],
  // ListWatch calls ObjectSerializer.serialize(selector, 'string') only, which returns strings unchanged.
  [`${DIST}cache.js\0./serializer.js`, 'export const ObjectSerializer = { serialize: (data) => data };\n'],
  // config.js uses undici's Agent and ProxyAgent only in createDispatcher (applySecurityAuthentication).
  [`${DIST}config.js\0undici`, notLoaded(['Agent', 'ProxyAgent'])],
  // informer.js (whose constants ListWatch imports) needs client-node's Watch only in makeInformer.
  [`${DIST}informer.js\0./watch.js`, notLoaded(['Watch'])],
]);

registerHooks({
  resolve(specifier, context, nextResolve) {
    const source = context.parentURL === undefined ? undefined : REDIRECTS.get(`${context.parentURL}\0${specifier}`);
    if (source !== undefined) return { url: `data:text/javascript,${encodeURIComponent(source)}`, shortCircuit: true };
    return nextResolve(specifier, context);
  },
});

const [config, cache, exception] = await Promise.all([
  import('@kubernetes/client-node/dist/config.js'),
  import('@kubernetes/client-node/dist/cache.js'),
  import('@kubernetes/client-node/dist/gen/apis/exception.js'),
]);

export const KubeConfig = config.KubeConfig;
export type KubeConfig = InstanceType<typeof config.KubeConfig>;
export type ListWatch<T extends KubernetesObject> = InstanceType<typeof cache.ListWatch<T>>;
/** client-node's informer, driven by our Watch (its declared parameter type is client-node's own Watch class). */
export const ListWatch = cache.ListWatch as unknown as new <T extends KubernetesObject>(
  path: string,
  watch: Watch,
  listFn: () => Promise<KubernetesListObject<T>>,
  autoStart?: boolean,
  labelSelector?: string,
  fieldSelector?: string,
  options?: ConstructorParameters<typeof cache.ListWatch>[6],
) => ListWatch<T>;
export const ApiException = exception.ApiException;

export type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node/dist/types.js';
import type { KubernetesListObject, KubernetesObject } from '@kubernetes/client-node/dist/types.js';

/** Accept header of the generated list calls (JSON; the server may still answer a Status as JSON). */
const ACCEPT = 'application/json, */*;q=0.8';

/** The User-Agent the generated API clients send (KubeConfig.makeApiClient's middleware), for API audit logs. */
const USER_AGENT = `kubernetes-client-javascript/${(createRequire(import.meta.url)('@kubernetes/client-node/package.json') as { version?: string }).version ?? ''}`;

/** Options for one request to the current cluster: URL, TLS, credentials and agent, as KubeConfig applies them. */
async function requestOptions(kc: KubeConfig, path: string, query: Readonly<Record<string, string | number | boolean | undefined>>): Promise<{ url: URL; opts: https.RequestOptions }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('No currently active cluster');
  const url = new URL(cluster.server + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
  const opts: https.RequestOptions = { method: 'GET', headers: { Accept: ACCEPT, 'User-Agent': USER_AGENT } };
  // TLS (CA, client certificate, skipTLSVerify, tls-server-name), Authorization (token, token file, exec and OIDC
  // plugins), impersonation, basic auth, and the agent (a cached https/http Agent, or a proxy agent).
  await kc.applyToHTTPSOptions(opts);
  return { url, opts };
}

function send(url: URL, opts: https.RequestOptions): http.ClientRequest {
  return (url.protocol === 'http:' ? http : https).request(url, opts);
}

/** Longest silence (ms) on a LIST before it fails (undici's default body and headers timeouts, as before). */
const LIST_TIMEOUT_MS = 300_000;

/**
 * GET `path` with `query` on the current cluster. Resolves with the body text on 200; rejects with an
 * ApiException (numeric `code`, the body) otherwise, like the generated calls; network and TLS failures reject
 * with Node's own errors (`code`: ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT, ...), a silent server with a
 * TimeoutError.
 */
export async function getText(kc: KubeConfig, path: string, query: Readonly<Record<string, string | undefined>>): Promise<string> {
  const { url, opts } = await requestOptions(kc, path, query);
  return new Promise<string>((resolve, reject) => {
    const req = send(url, opts);
    req.setTimeout(LIST_TIMEOUT_MS, () => req.destroy(new DOMException(`no reply within ${LIST_TIMEOUT_MS} ms`, 'TimeoutError')));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status === 200) resolve(body);
        else reject(new ApiException(status, `HTTP ${status}`, body, res.headers as Record<string, string>));
      });
    });
    req.end();
  });
}

/**
 * A WATCH stream, with client-node's Watch contract (ListWatch calls it): `watch()` resolves once the response
 * head arrived (or the request failed), with a controller whose abort() closes the stream; `callback(type,
 * object, event)` per JSON line (unparseable lines are skipped); `done(err)` exactly once, null for a clean end.
 * A non-200 status is an Error with `statusCode`. No byte for `requestTimeoutMs` (30 s, before the head and
 * between chunks after it) is a TimeoutError, after which the informer watches again.
 */
export class Watch {
  requestTimeoutMs = 30_000;
  readonly config: KubeConfig;

  constructor(config: KubeConfig) {
    this.config = config;
  }

  async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    done: (err: any) => void,
  ): Promise<AbortController> {
    const controller = new AbortController();
    let req: http.ClientRequest | null = null;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      req?.destroy();
      done(err ?? null);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), this.requestTimeoutMs);
      timer.unref();
    };
    controller.signal.addEventListener('abort', () => finish(null), { once: true });
    let headed!: () => void;
    const head = new Promise<void>((resolve) => (headed = resolve));
    try {
      const { url, opts } = await requestOptions(this.config, path, { ...queryParams, watch: 'true' });
      if (finished) return controller;
      arm();
      req = send(url, opts);
      req.on('error', (e) => {
        finish(e);
        headed();
      });
      req.on('response', (res) => {
        headed();
        if (res.statusCode !== 200) {
          const e = new Error(res.statusMessage || http.STATUS_CODES[res.statusCode ?? 500] || 'Internal Server Error') as Error & { statusCode?: number };
          e.statusCode = res.statusCode ?? 500;
          res.resume();
          finish(e);
          return;
        }
        arm(); // from here on an inactivity timeout
        res.setEncoding('utf8');
        let partial = '';
        res.on('data', (chunk: string) => {
          arm();
          const lines = (partial + chunk).split('\n');
          partial = lines.pop()!;
          for (const line of lines) {
            if (line === '' || finished) continue;
            let event: { type?: unknown; object?: unknown };
            try {
              event = JSON.parse(line) as { type?: unknown; object?: unknown };
            } catch {
              continue; // as client-node: an unparseable line is skipped
            }
            callback(event.type as string, event.object, event);
          }
        });
        res.on('error', (e) => finish(e));
        res.on('end', () => finish(null));
        res.on('close', () => finish(null));
      });
      req.end();
      await head;
    } catch (e) {
      finish(e);
    }
    return controller;
  }
}

// backends/kubernetes/kubeconfig: where the API server and credentials come from — `kubeconfig` key, then
// $KUBECONFIG, then the in-cluster service account — read from the injected env, never process.env.

import { existsSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { delimiter, resolve } from 'node:path';
import { KubeConfig } from './client.ts';
import { BackendError } from '../backend.ts';

/** Where Kubernetes mounts the service-account token, CA and namespace in every pod. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type KubeConfigSource =
  | { readonly kind: 'file'; readonly path: string; readonly from: 'config' | 'KUBECONFIG' }
  | { readonly kind: 'in-cluster'; readonly host: string; readonly port: string; readonly saDir: string };

/** Decide from config and env alone (no I/O) which source to use; throws SVCDNS_BACKEND_CONFIG when none. */
export function chooseSource(
  opts: { kubeconfig?: string | undefined },
  configDir: string,
  env: Readonly<Record<string, string | undefined>>,
): KubeConfigSource {
  if (opts.kubeconfig) return { kind: 'file', path: resolve(configDir, opts.kubeconfig), from: 'config' };
  const fromEnv = (env.KUBECONFIG ?? '').split(delimiter).find((p) => p !== '');
  // Only the first $KUBECONFIG entry is read (kubectl merges them; svcdns needs one cluster).
  if (fromEnv) return { kind: 'file', path: resolve(fromEnv), from: 'KUBECONFIG' };
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host && port) return { kind: 'in-cluster', host, port, saDir: SERVICE_ACCOUNT_DIR };
  throw new BackendError(
    'SVCDNS_BACKEND_CONFIG',
    'no Kubernetes API configuration: set `kubeconfig` in the backend, or $KUBECONFIG, or run in a pod ' +
      '(KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT with a mounted service account)',
  );
}

/** Build a KubeConfig from the source; throws SVCDNS_BACKEND_CONFIG (unreadable file, unknown context, no token). */
export function loadKubeConfig(source: KubeConfigSource, context: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (source.kind === 'file') {
    try {
      kc.loadFromFile(source.path);
    } catch (err) {
      throw new BackendError(
        'SVCDNS_BACKEND_CONFIG',
        `cannot read kubeconfig ${source.path} (from ${source.from === 'config' ? 'the `kubeconfig` key' : '$KUBECONFIG'}): ${(err as Error).message}`,
        { path: source.path },
        err,
      );
    }
  } else {
    const tokenFile = `${source.saDir}/token`;
    if (!existsSync(tokenFile)) {
      throw new BackendError(
        'SVCDNS_BACKEND_CONFIG',
        `in-cluster config: service-account token ${tokenFile} is missing (automountServiceAccountToken: false?)`,
        { path: tokenFile },
      );
    }
    const host = isIPv6(source.host) ? `[${source.host}]` : source.host;
    kc.loadFromOptions({
      clusters: [{ name: 'in-cluster', server: `https://${host}:${source.port}`, caFile: `${source.saDir}/ca.crt`, skipTLSVerify: false }],
      // tokenFile re-reads the projected token, which the kubelet rotates (about hourly).
      users: [{ name: 'in-cluster', authProvider: { name: 'tokenFile', config: { tokenFile } } }],
      contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'in-cluster' }],
      currentContext: 'in-cluster',
    });
  }
  if (context !== undefined) {
    if (!kc.getContextObject(context)) {
      throw new BackendError('SVCDNS_BACKEND_CONFIG', `kubeconfig has no context "${context}"`, { context });
    }
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentCluster()) {
    throw new BackendError('SVCDNS_BACKEND_CONFIG', 'kubeconfig has no current context/cluster (set `context`)', {});
  }
  return kc;
}

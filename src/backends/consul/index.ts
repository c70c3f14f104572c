// backends/consul: the `type: consul` backend — watches the Consul catalog (/v1/catalog/services) and each
// service's health (/v1/health/service/<name>) with blocking queries, per datacenter; config in config.ts;
// readiness: SERVFAIL until the first full sync of every datacenter, then last known data while Consul fails.

import { resolve } from 'node:path';
import type { Backend, BackendCheckContext, BackendContext, BackendProblem } from '../backend.ts';
import { BackendError } from '../backend.ts';
import type { ConsulBackendConfig } from './config.ts';
import { parseAddress, resolveAccess } from './config.ts';
import { ConsulBackend } from './consul.ts';

export { configSchema } from './config.ts';
export type { ConsulBackendConfig } from './config.ts';

export function create(config: ConsulBackendConfig, ctx: BackendContext): Backend {
  return new ConsulBackend(config, ctx);
}

/**
 * What startup checks before it connects. Permanent (startup exits 2): the address, from the config or
 * $CONSUL_HTTP_ADDR, cannot be parsed, or TLS settings go with an http address — the backend would retry for
 * ever. With `full` (check-config) also the token, CA, certificate and key files, which the running backend
 * re-reads on each retry (a mounted secret may appear late), so at startup they are not fatal.
 */
export async function check(config: ConsulBackendConfig, ctx: BackendCheckContext): Promise<BackendProblem[]> {
  const fromEnv = config.address === undefined && ctx.env['CONSUL_HTTP_ADDR'] !== undefined;
  const ssl = /^(1|true)$/i.test(ctx.env['CONSUL_HTTP_SSL'] ?? '');
  const problem = (e: unknown, permanent: boolean): BackendProblem => {
    const err = e instanceof BackendError ? e : new BackendError('SVCDNS_BACKEND_CONFIG', String(e));
    const message = fromEnv && err.details['address'] !== undefined ? `${err.message} (from $CONSUL_HTTP_ADDR)` : err.message;
    return { code: err.code, message, permanent, ...(config.address !== undefined && err.details['address'] !== undefined ? { key: 'address' } : {}) };
  };
  let protocol: string;
  try {
    protocol = parseAddress(config.address ?? ctx.env['CONSUL_HTTP_ADDR'] ?? '127.0.0.1:8500', ssl).protocol;
  } catch (e) {
    return [problem(e, true)];
  }
  if (protocol !== 'https:' && config.tls !== undefined) {
    return [{ code: 'SVCDNS_BACKEND_CONFIG', key: 'tls', message: 'is set but the Consul address is not https', permanent: true }];
  }
  if (!ctx.full) return [];
  try {
    await resolveAccess(config, ctx.env, ctx.configDir);
    return [];
  } catch (e) {
    // Name the key whose file could not be read, when the file came from the config (not from the environment).
    const file = e instanceof BackendError ? e.details['file'] : undefined;
    const keys: [string, string | undefined][] = [['tokenFile', config.tokenFile], ['tls', config.tls?.caFile], ['tls', config.tls?.certFile], ['tls', config.tls?.keyFile]];
    const key = keys.find(([, f]) => f !== undefined && resolve(ctx.configDir, f) === file)?.[0];
    const p = problem(e, false);
    return [key === undefined ? p : { ...p, key }];
  }
}

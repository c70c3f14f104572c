// backends/consul/config: the strict config schema of a `type: consul` backend, and how address, token and TLS
// settings are resolved from config, environment and files (Consul's own CONSUL_HTTP_* variables).

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import { BackendError } from '../backend.ts';
import { backendNameSchema, labelSchema } from '../schema.ts';

/** Consul's default `limits.http_max_conns_per_client` is 200; stay under it with room for other local clients. */
export const DEFAULT_MAX_CONNECTIONS = 128;

/** Sockets per datacenter kept out of the shared budget: the catalog, health-state hint and node-list watches. */
export const CONTROL_SOCKETS = 3;

export const configSchema = z.strictObject({
  type: z.literal('consul'),
  name: backendNameSchema,
  /** `host:port` or `http(s)://host:port`; default CONSUL_HTTP_ADDR, else 127.0.0.1:8500. */
  address: z
    .string()
    .min(1)
    .superRefine((a, ctx) => {
      // A port that is not a number (or an unknown scheme) can never connect: a config error, not an outage.
      try {
        parseAddress(a, false);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `must be host:port or http(s)://host:port (${(e as Error).message})` });
      }
    })
    .optional(),
  /** The agent's datacenter (default scope). Default: `Config.Datacenter` from `/v1/agent/self`. */
  datacenter: labelSchema.optional(),
  /** Other datacenters mirrored as `N.service.<dc>.D` (queried with `?dc=`). */
  datacenters: z.array(labelSchema).default([]),
  /** ACL token. Default: `tokenFile`, else CONSUL_HTTP_TOKEN, else CONSUL_HTTP_TOKEN_FILE. Never logged. */
  token: z.string().min(1).optional(),
  /** File holding the token (re-read after a 403, so a rotated token is picked up). Relative to the config file. */
  tokenFile: z.string().min(1).optional(),
  tls: z
    .strictObject({
      caFile: z.string().min(1).optional(),
      certFile: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
      serverName: z.string().min(1).optional(),
    })
    .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
      message: 'certFile and keyFile must be given together',
    })
    .optional(),
  /** Read mode (Consul consistency.mdx): `stale` (any server, what Consul DNS uses), `default`, `consistent`. */
  consistency: z.enum(['stale', 'default', 'consistent']).default('stale'),
  /** Also drop instances with a `warning` check (Consul DNS `only_passing`). */
  onlyPassing: z.boolean().default(false),
  /** Max block time of one blocking query (Consul caps it at 600 s and adds up to wait/16 of jitter). */
  waitSeconds: z.number().int().min(1).max(600).default(60),
  /** Bound of a non-blocking request; a blocking one gets waitSeconds + wait/16 + this before it counts as hung. */
  requestTimeoutMs: z.number().int().min(50).max(600_000).default(10_000),
  /** Sockets to the agent (keep-alive, shared by every watch). */
  maxConnections: z.number().int().min(4).max(65_535).default(DEFAULT_MAX_CONNECTIONS),
  /** Non-blocking fetches in flight at once (first sync of 5,000 services, index resets, error retries). */
  fetchConcurrency: z.number().int().min(1).max(1024).default(16),
  /** Rate limit per watch loop (Consul blocking.mdx): token bucket of 2, one token back every this many ms. */
  minWatchIntervalMs: z.number().int().min(0).max(600_000).default(500),
  /** TTL of every record from this backend (§3.4); default: the global ttlSeconds. */
  ttlSeconds: z.number().int().min(0).max(2_147_483_647).optional(),
}).superRefine((c, ctx) => {
  if (c.tls !== undefined && c.address !== undefined && /^http:\/\//i.test(c.address)) {
    ctx.addIssue({ code: 'custom', path: ['tls'], message: 'is set but the address is http://; use https:// (or drop tls)' });
  }
  // Three sockets per datacenter (catalog, hint and node-list watches) and at least one blocking slot besides the fetches.
  const reserved = CONTROL_SOCKETS * (1 + c.datacenters.length) + 1;
  if (c.fetchConcurrency + reserved > c.maxConnections) {
    ctx.addIssue({
      code: 'custom',
      path: ['maxConnections'],
      message: `must be at least fetchConcurrency + ${reserved} (${CONTROL_SOCKETS} per datacenter + 1 blocking slot)`,
    });
  }
});

export type ConsulBackendConfig = z.output<typeof configSchema>;

export type TokenSource = 'config' | 'config-file' | 'env' | 'env-file' | 'none';

export interface Endpoint {
  readonly protocol: 'http:' | 'https:';
  readonly host: string;
  readonly port: number;
}

/** `host:port`, `[v6]:port` or a URL → endpoint. Consul's own rule: CONSUL_HTTP_SSL=true means https. */
export function parseAddress(text: string, ssl: boolean): Endpoint {
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `${ssl ? 'https' : 'http'}://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new BackendError('SVCDNS_BACKEND_CONFIG', `invalid Consul address "${text}"`, { address: text });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BackendError('SVCDNS_BACKEND_CONFIG', `Consul address "${text}" must be http or https`, { address: text });
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 8501 : 8500;
  return { protocol: url.protocol, host, port };
}

export interface ResolvedAccess {
  readonly endpoint: Endpoint;
  readonly token: string | null;
  readonly tokenSource: TokenSource;
  readonly tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string } | null;
}

type Env = Readonly<Record<string, string | undefined>>;

async function readConfigFile(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new BackendError('SVCDNS_BACKEND_CONFIG', `cannot read Consul ${what} ${path}: ${(e as Error).message}`, { file: path }, e);
  }
}

/** Resolve address, token (with its source, never the value in errors) and TLS material. Throws CONFIG errors. */
export async function resolveAccess(cfg: ConsulBackendConfig, env: Env, configDir: string): Promise<ResolvedAccess> {
  const ssl = /^(1|true)$/i.test(env['CONSUL_HTTP_SSL'] ?? '');
  const endpoint = parseAddress(cfg.address ?? env['CONSUL_HTTP_ADDR'] ?? '127.0.0.1:8500', ssl);

  let token: string | null = null;
  let tokenSource: TokenSource = 'none';
  if (cfg.token !== undefined) {
    token = cfg.token;
    tokenSource = 'config';
  } else if (cfg.tokenFile !== undefined) {
    token = (await readConfigFile(resolve(configDir, cfg.tokenFile), 'token file')).toString('utf8').trim();
    tokenSource = 'config-file';
  } else if (env['CONSUL_HTTP_TOKEN']) {
    token = env['CONSUL_HTTP_TOKEN'];
    tokenSource = 'env';
  } else if (env['CONSUL_HTTP_TOKEN_FILE']) {
    token = (await readConfigFile(resolve(configDir, env['CONSUL_HTTP_TOKEN_FILE']), 'token file')).toString('utf8').trim();
    tokenSource = 'env-file';
  }
  if (token === '') token = null;

  const caFile = cfg.tls?.caFile ?? env['CONSUL_CACERT'];
  const certFile = cfg.tls?.certFile ?? env['CONSUL_CLIENT_CERT'];
  const keyFile = cfg.tls?.keyFile ?? env['CONSUL_CLIENT_KEY'];
  const serverName = cfg.tls?.serverName ?? env['CONSUL_TLS_SERVER_NAME'];
  let tls: ResolvedAccess['tls'] = null;
  if (endpoint.protocol === 'https:') {
    tls = {};
    if (caFile) tls.ca = await readConfigFile(resolve(configDir, caFile), 'CA file');
    if (certFile) tls.cert = await readConfigFile(resolve(configDir, certFile), 'client certificate');
    if (keyFile) tls.key = await readConfigFile(resolve(configDir, keyFile), 'client key');
    if (serverName) tls.servername = serverName;
  } else if (cfg.tls) {
    throw new BackendError('SVCDNS_BACKEND_CONFIG', 'Consul tls settings given but the address is not https', {
      address: cfg.address ?? env['CONSUL_HTTP_ADDR'],
    });
  }
  return { endpoint, token, tokenSource, tls };
}

// app: the one composition root. Builds the store, answerer, processor, listeners and backends from a validated
// config, wires them together, and tears them down. Only this module sees every layer.

import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { Answerer } from './answer/answer.ts';
import type { Backend } from './backends/backend.ts';
import { backendModules, type AnyBackendConfig, type BackendModule } from './backends/registry.ts';
import { supervisedSink, type SupervisorHooks } from './backends/supervisor.ts';
import type { Config } from './config/schema.ts';
import { type DnsMetrics, QueryProcessor } from './dns/processor.ts';
import { DnsServer, type BoundAddress } from './dns/server.ts';
import { Store } from './store/store.ts';

export interface AppOptions {
  readonly config: Config;
  /** The config file, for resolving relative paths in backend config; default: the working directory. */
  readonly configPath?: string | undefined;
  readonly logger: Logger;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly now?: () => number;
  readonly dnsMetrics?: DnsMetrics;
  readonly supervisorHooks?: SupervisorHooks;
}

export interface App {
  readonly store: Store;
  readonly processor: QueryProcessor;
  /** The bound DNS addresses (port 0 resolved), UDP and TCP on each. */
  readonly dnsAddresses: readonly BoundAddress[];
  readonly backends: readonly Backend[];
  /** Stop listeners (finishing TCP queries already received) and backends. */
  stop(graceMs?: number): Promise<void>;
}

export async function startApp(opts: AppOptions): Promise<App> {
  const { config, logger } = opts;
  const now = opts.now ?? Date.now;
  const store = new Store({ now });
  const answerer = new Answerer(store, {
    domains: config.domains,
    ttlSeconds: config.ttlSeconds,
    negativeTtlSeconds: config.negativeTtlSeconds,
    order: config.order,
    maxAnswers: config.maxAnswers,
    emptyService: config.emptyService,
    nameserver: config.nameserver,
  });
  const processor = new QueryProcessor({
    responder: answerer,
    maxUdpPayloadBytes: config.maxUdpPayloadBytes,
    order: config.order,
    ...(opts.dnsMetrics ? { metrics: opts.dnsMetrics } : {}),
  });
  const dns = new DnsServer({
    listen: config.listen,
    processor,
    tcpIdleTimeoutMs: config.tcp.idleTimeoutMs,
    tcpMaxConnections: config.tcp.maxConnections,
    onError: (err, where) => logger.warn({ event: 'socket_error', where, err: err.message }, 'socket error'),
  });
  await dns.start();

  const configDir = opts.configPath ? dirname(resolve(opts.configPath)) : process.cwd();
  const backends: Backend[] = [];
  try {
    for (const bc of config.backends) backends.push(createBackend(bc, configDir, opts));
  } catch (err) {
    await dns.close(0);
    throw err;
  }
  for (const b of backends) store.register(b.name, b.type, (s) => b.ownsScope(s));
  for (const b of backends) {
    const log = logger.child({ backend: b.name });
    b.start(supervisedSink(b.name, store, log, now, opts.supervisorHooks));
  }
  logger.info(
    {
      event: 'listening',
      dns: dns.addresses.map((a) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)),
      domains: config.domains,
      backends: backends.map((b) => ({ name: b.name, type: b.type })),
    },
    'svcdns listening (udp+tcp)',
  );

  let stopped: Promise<void> | null = null;
  return {
    store,
    processor,
    dnsAddresses: dns.addresses,
    backends,
    stop(graceMs = 2000) {
      stopped ??= (async () => {
        await dns.close(graceMs);
        await Promise.allSettled(backends.map((b) => b.stop()));
      })();
      return stopped;
    },
  };
}

function createBackend(bc: AnyBackendConfig, configDir: string, opts: AppOptions): Backend {
  const mod = backendModules[bc.type] as BackendModule<AnyBackendConfig>;
  const name = bc.name ?? bc.type;
  return mod.create(bc, {
    logger: opts.logger.child({ backend: name }),
    configDir,
    env: opts.env ?? process.env,
  });
}

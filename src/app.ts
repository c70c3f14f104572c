// app: the one composition root. Builds the store, answerer, processor, listeners and backends from a validated
// config, wires them together, and tears them down. Only this module sees every layer.

import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { Answerer, type AnswerOptions } from './answer/answer.ts';
import type { Backend } from './backends/backend.ts';
import { backendModules, type AnyBackendConfig, type BackendModule } from './backends/registry.ts';
import { supervisedSink, type SupervisorHooks } from './backends/supervisor.ts';
import type { Config } from './config/schema.ts';
import { backendName, planReload, type ReloadPlan } from './config/reload.ts';
import { AdminServer } from './observability/admin.ts';
import { MeasuredProcessor } from './observability/measured-processor.ts';
import { Metrics } from './observability/metrics.ts';
import { QueryLog } from './observability/query-log.ts';
import { type DnsMetrics, QueryProcessor } from './dns/processor.ts';
import { DnsServer, type BoundAddress } from './dns/server.ts';
import { StoreReplicator } from './store/replication.ts';
import { Store } from './store/store.ts';
import { WorkerPool } from './workers/pool.ts';
import type { LogLevel } from './observability/logger.ts';

export interface AppOptions {
  readonly config: Config;
  /** The config file, for resolving relative paths in backend config; default: the working directory. */
  readonly configPath?: string | undefined;
  readonly logger: Logger;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly now?: () => number;
  readonly dnsMetrics?: DnsMetrics;
  readonly supervisorHooks?: SupervisorHooks;
  /**
   * Start the admin HTTP server per `config.admin` (default false: library callers and tests listening on port 0
   * must not all grab 127.0.0.1:8654; the CLI passes true).
   */
  readonly serveAdmin?: boolean;
}

export interface App {
  readonly store: Store;
  readonly processor: QueryProcessor;
  /** The bound DNS addresses (port 0 resolved), UDP and TCP on each. */
  readonly dnsAddresses: readonly BoundAddress[];
  readonly backends: readonly Backend[];
  /** Stop listeners (finishing TCP queries already received) and backends. */
  stop(graceMs?: number): Promise<void>;
  /** The app's Prometheus metrics (also when the admin server is off). */
  readonly metrics: Metrics;
  /** Where the admin HTTP server listens, or null when it is not running. */
  readonly adminAddress: { readonly host: string; readonly port: number } | null;
  /** The config in effect (after reloads; socket keys keep their running values until a restart). */
  readonly config: Config;
  /**
   * Apply a new validated config without a restart (see config/reload.ts): unchanged backends keep running,
   * changed/added/removed ones are re-created/started/stopped, answer options rebuild the processor. Throws (and
   * changes nothing) when a new backend cannot be created. Reloads are serialised.
   */
  reload(next: Config): Promise<ReloadPlan>;
  /** The DNS worker threads when `workers` > 1, else null. */
  readonly workers: WorkerPool | null;
}

export async function startApp(opts: AppOptions): Promise<App> {
  const { config, logger } = opts;
  const now = opts.now ?? Date.now;
  const store = new Store({ now });
  const metrics = new Metrics({ store, logger, now });
  const answerer = answererFor(store, config);
  const dnsMetrics = opts.dnsMetrics ?? metrics;
  const processor = new MeasuredProcessor({
    responder: answerer,
    maxUdpPayloadBytes: config.maxUdpPayloadBytes,
    order: config.order,
    metrics: dnsMetrics,
  }, metrics.answerLatency);
  metrics.cachedNames = () => processor.cachedNames;
  const configDir = opts.configPath ? dirname(resolve(opts.configPath)) : process.cwd();
  let current = config;
  const workerCount = config.workers === 'auto' ? availableParallelism() : config.workers;
  // One thread answers (in process), or a pool of worker threads fed by replication of this store.
  const pool =
    workerCount > 1
      ? new WorkerPool({
          count: workerCount,
          listen: config.listen,
          answer: answerOptions(config),
          maxUdpPayloadBytes: config.maxUdpPayloadBytes,
          tcp: config.tcp,
          logLevel: config.log.level as LogLevel,
          queryLog: config.queryLog,
          configDir,
          replicator: new StoreReplicator(store),
          metrics,
          logger,
        })
      : null;
  const dns = pool
    ? null
    : new DnsServer({
        listen: config.listen,
        processor,
        tcpIdleTimeoutMs: config.tcp.idleTimeoutMs,
        tcpMaxConnections: config.tcp.maxConnections,
        onError: (err, where) => logger.warn({ event: 'socket_error', where, err: err.message }, 'socket error'),
        onTcpConnections: (open) => metrics.tcpConnections(open),
      });
  try {
    await (pool ?? dns!).start();
  } catch (err) {
    await (pool ?? dns!).close(0);
    throw err;
  }
  const dnsAddresses = () => (pool ? pool.addresses : dns!.addresses);

  const backends: Backend[] = [];
  try {
    for (const bc of config.backends) backends.push(await createBackend(bc, configDir, opts));
  } catch (err) {
    await (pool ?? dns!).close(0);
    throw err;
  }
  const supervisorHooks: SupervisorHooks = {
    onSnapshot(backend, swapMs) {
      metrics.snapshotApplied(backend, swapMs);
      opts.supervisorHooks?.onSnapshot?.(backend, swapMs);
    },
  };
  const startBackend = (b: Backend) => b.start(supervisedSink(b.name, store, logger.child({ backend: b.name }), now, supervisorHooks));
  for (const b of backends) store.register(b.name, b.type, (s) => b.ownsScope(s), () => b.scopeClaim());
  for (const b of backends) startBackend(b);
  const openQueryLog = (c: Config['queryLog']) =>
    c.enabled
      ? new QueryLog(c, configDir, () => metrics.queryLogged(), (err) => logger.error({ event: 'query_log_failed', path: c.path ?? 'stdout', err: err.message }, 'query log cannot be written; it stops recording (DNS unaffected)'))
      : null;
  // In worker mode each worker writes the query log for the queries it answers; the main thread answers none.
  let queryLog = pool ? null : openQueryLog(config.queryLog);
  processor.setQueryLog(queryLog);
  let stopping = false;
  const admin = opts.serveAdmin && config.admin.enabled
    ? new AdminServer({
        host: config.admin.listen.host,
        port: config.admin.listen.port,
        store,
        metrics,
        logger,
        now,
        healthy: () => !stopping && dnsAddresses().length > 0 && (pool === null || pool.live > 0),
        info: () => ({ dns: dnsAddresses(), backends: backends.length, workers: pool ? { configured: workerCount, live: pool.live } : null }),
      })
    : null;
  try {
    await admin?.start();
  } catch (err) {
    await (pool ?? dns!).close(0);
    await Promise.allSettled(backends.map((b) => b.stop()));
    queryLog?.close();
    throw err;
  }
  logger.info(
    {
      event: 'listening',
      dns: dnsAddresses().map((a) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)),
      workers: pool ? workerCount : 1,
      domains: config.domains,
      backends: backends.map((b) => ({ name: b.name, type: b.type })),
      admin: admin?.address ?? null,
    },
    'svcdns listening (udp+tcp)',
  );

  let reloading: Promise<unknown> = Promise.resolve();
  const reload = async (next: Config): Promise<ReloadPlan> => {
    // A reload racing a stop must not start backends that stop() will never see.
    if (stopping) throw new Error('svcdns is stopping; reload ignored');
    const plan = planReload(current, next);
    // Create everything that can fail before touching what runs: a failure leaves the running config in place.
    const created = new Map<string, Backend>();
    try {
      for (const bc of [...plan.change, ...plan.add]) created.set(backendName(bc), await createBackend(bc, configDir, opts));
    } catch (err) {
      metrics.configReload(false);
      throw err;
    }
    for (const name of [...plan.remove, ...plan.change.map(backendName)]) {
      const i = backends.findIndex((b) => b.name === name);
      const old = backends.splice(i, 1)[0]!;
      // Stop first: a snapshot arriving after unregister would name an unknown backend.
      await old.stop().catch((err: unknown) => logger.warn({ event: 'backend_stop_failed', backend: name, err: (err as Error).message }, 'backend stop failed'));
      store.unregister(name);
      const repl = created.get(name);
      if (repl) {
        // Same synchronous step as unregister: its names go from old data straight to SERVFAIL-until-synced (§5.4).
        store.register(repl.name, repl.type, (s) => repl.ownsScope(s), () => repl.scopeClaim());
        backends.push(repl);
        startBackend(repl);
      }
    }
    for (const bc of plan.add) {
      const b = created.get(backendName(bc))!;
      store.register(b.name, b.type, (s) => b.ownsScope(s), () => b.scopeClaim());
      backends.push(b);
      startBackend(b);
    }
    if (plan.answerChanged) {
      processor.swap(new QueryProcessor({ responder: answererFor(store, next), maxUdpPayloadBytes: next.maxUdpPayloadBytes, order: next.order, metrics: dnsMetrics }));
      pool?.setAnswerOptions(answerOptions(next), next.maxUdpPayloadBytes);
    }
    if (plan.logLevelChanged) logger.level = next.log.level;
    if (plan.queryLogChanged) {
      const old = queryLog;
      queryLog = pool ? null : openQueryLog(next.queryLog);
      processor.setQueryLog(queryLog);
      old?.close();
      pool?.setQueryLog(next.queryLog);
    }
    // Socket keys keep their running values, so a later reload still sees them as pending.
    current = { ...next, listen: current.listen, tcp: current.tcp, admin: current.admin };
    metrics.configReload(true);
    const changed = plan.change.length + plan.add.length + plan.remove.length > 0 || plan.answerChanged || plan.logLevelChanged || plan.queryLogChanged;
    logger[changed ? 'info' : 'debug'](
      { event: 'config_reloaded', kept: plan.keep, changed: plan.change.map(backendName), added: plan.add.map(backendName), removed: plan.remove, answerOptions: plan.answerChanged },
      changed ? 'config reloaded' : 'config reloaded (no change)',
    );
    if (plan.restartRequired.length > 0) {
      logger.warn({ event: 'restart_required', keys: plan.restartRequired }, `restart required for: ${plan.restartRequired.join(', ')} (kept the running values)`);
    }
    return plan;
  };

  let stopped: Promise<void> | null = null;
  return {
    store,
    processor,
    get dnsAddresses() {
      return dnsAddresses();
    },
    workers: pool,
    backends,
    metrics,
    adminAddress: admin?.address ?? null,
    get config() {
      return current;
    },
    reload(next) {
      const r = reloading.then(() => reload(next));
      reloading = r.catch(() => {});
      return r;
    },
    stop(graceMs = 2000) {
      stopped ??= (async () => {
        stopping = true;
        await reloading;
        await (pool ?? dns!).close(graceMs);
        await Promise.allSettled(backends.map((b) => b.stop()));
        await admin?.close();
        queryLog?.close();
      })();
      return stopped;
    },
  };
}

function answerOptions(config: Config): AnswerOptions {
  return {
    domains: config.domains,
    ttlSeconds: config.ttlSeconds,
    negativeTtlSeconds: config.negativeTtlSeconds,
    order: config.order,
    maxAnswers: config.maxAnswers,
    emptyService: config.emptyService,
    nameserver: config.nameserver,
  };
}

function answererFor(store: Store, config: Config): Answerer {
  return new Answerer(store, answerOptions(config));
}


async function createBackend(bc: AnyBackendConfig, configDir: string, opts: AppOptions): Promise<Backend> {
  const mod = backendModules[bc.type] as BackendModule<AnyBackendConfig>;
  const name = bc.name ?? bc.type;
  const { create } = await mod.load();
  return create(bc, {
    logger: opts.logger.child({ backend: name }),
    configDir,
    env: opts.env ?? process.env,
  });
}

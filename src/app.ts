// app: the one composition root. Builds the store, answerer, processor, listeners and backends from a validated
// config, wires them together, and tears them down. Only this module sees every layer.

import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { Answerer, type AnswerOptions } from './answer/answer.ts';
import type { Backend, BackendError, BackendSink } from './backends/backend.ts';
import { backendModules, type AnyBackendConfig, type BackendModule } from './backends/registry.ts';
import { supervisedSink, type SupervisorHooks } from './backends/supervisor.ts';
import type { Config } from './config/schema.ts';
import { backendName, planReload, ReloadError, type ReloadPlan } from './config/reload.ts';
import type { ServiceSnapshot } from './model/service.ts';
import { AdminServer } from './observability/admin.ts';
import { MeasuredProcessor } from './observability/measured-processor.ts';
import { Metrics } from './observability/metrics.ts';
import { QueryLog } from './observability/query-log.ts';
import { type DnsMetrics, QueryProcessor } from './dns/processor.ts';
import { DnsServer, type BoundAddress } from './dns/server.ts';
import { StoreReplicator } from './store/replication.ts';
import { STAGE_FIRST_SYNC_OVER, Store } from './store/store.ts';
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
  /**
   * Stop: /readyz turns 503 at once; DNS keeps answering (UDP and TCP) for `lameDuckMs` (default 0); then the
   * listeners close, TCP queries already received are answered within `graceMs`, and the backends stop.
   */
  stop(graceMs?: number, lameDuckMs?: number): Promise<void>;
  /** The app's Prometheus metrics (also when the admin server is off). */
  readonly metrics: Metrics;
  /** Where the admin HTTP server listens, or null when it is not running. */
  readonly adminAddress: { readonly host: string; readonly port: number } | null;
  /** The config in effect (after reloads; socket keys keep their running values until a restart). */
  readonly config: Config;
  /**
   * Apply a new validated config without a restart (see config/reload.ts): unchanged backends keep running;
   * changed and added ones are started beside the running ones and swapped in once every one has synced
   * (make-before-break), removed ones stop; answer options rebuild the processor. Throws a ReloadError or the
   * creation error, and changes nothing, when a new backend cannot be created, fails its first sync or does not
   * sync within `reload.firstSyncTimeoutMs`. Reloads are serialised.
   */
  reload(next: Config): Promise<ReloadPlan>;
  /** The DNS worker threads when `workers` > 1, else null. */
  readonly workers: WorkerPool | null;
}

export async function startApp(opts: AppOptions): Promise<App> {
  const { config, logger } = opts;
  const now = opts.now ?? Date.now;
  const store = new Store({ now, stageFirstSyncOver: STAGE_FIRST_SYNC_OVER }); // a 10k first sync: short turns (issue 11 #2)
  const workerCount = config.workers === 'auto' ? availableParallelism() : config.workers;
  const metrics = new Metrics({ store, logger, now, domains: config.domains, tcpMaxConnections: config.tcp.maxConnections * Math.max(1, workerCount) });
  const answerer = answererFor(store, config);
  const dnsMetrics = opts.dnsMetrics ?? metrics;
  const processor = new MeasuredProcessor({
    responder: answerer,
    maxUdpPayloadBytes: config.maxUdpPayloadBytes,
    order: config.order,
    metrics: dnsMetrics,
    onGeneration: (g) => store.served(g),
    cacheBytes: config.cache.maxBytes,
  }, metrics.local, metrics.zones);
  metrics.cachedNames = () => processor.cachedNames;
  metrics.cachedBytes = () => processor.cachedBytes;
  const configDir = opts.configPath ? dirname(resolve(opts.configPath)) : process.cwd();
  let current = config;

  // Every backend exists, is registered and has started before any DNS socket is bound (§5.4): from the first
  // query on, a name a backend may own answers SERVFAIL until it syncs, never NXDOMAIN. Consul and Kubernetes
  // are loaded by import() here, before binding, rather than registered behind a placeholder claim: their own
  // claim is exact from the start (a placeholder would have to claim everything), a bad backend config fails
  // before a socket exists, and the wait is spent with the port closed, which a resolver treats as a dead server
  // (it asks another one) where an early NXDOMAIN would be cached.
  const backends: Backend[] = [];
  for (const bc of config.backends) backends.push(await createBackend(bc, configDir, opts, metrics));
  const supervisorHooks: SupervisorHooks = {
    onSnapshot(backend, swapMs) {
      metrics.snapshotApplied(backend, swapMs);
      opts.supervisorHooks?.onSnapshot?.(backend, swapMs);
    },
  };
  const sinkFor = (b: Backend) => supervisedSink(b.name, store, logger.child({ backend: b.name }), now, supervisorHooks);
  // Each running instance reports through a gate: once a reload has replaced or removed it, whatever it still
  // sends while it stops is dropped (the name may already belong to its successor).
  const detach = new Map<Backend, () => void>();
  const gated = (b: Backend, sink: BackendSink): BackendSink => {
    let open = true;
    detach.set(b, () => {
      open = false;
      detach.delete(b);
    });
    return {
      snapshot: (snap, receivedAtMs) => {
        if (open) sink.snapshot(snap, receivedAtMs);
      },
      error: (err) => {
        if (open) sink.error(err);
      },
    };
  };
  const register = (b: Backend) => store.register(b.name, b.type, (s) => b.ownsScope(s), () => b.scopeClaim());
  for (const b of backends) register(b);
  for (const b of backends) b.start(gated(b, sinkFor(b)));
  const stopBackends = (list: readonly Backend[]) =>
    Promise.allSettled(
      list.map((b) => b.stop().catch((err: unknown) => logger.warn({ event: 'backend_stop_failed', backend: b.name, err: (err as Error).message }, 'backend stop failed'))),
    );

  // One thread answers (in process), or a pool of worker threads fed by replication of this store.
  const pool =
    workerCount > 1
      ? new WorkerPool({
          count: workerCount,
          listen: config.listen,
          answer: answerOptions(config),
          maxUdpPayloadBytes: config.maxUdpPayloadBytes,
          cacheBytes: Math.max(1_048_576, Math.floor(config.cache.maxBytes / workerCount)),
          tcp: config.tcp,
          udp: config.udp,
          guard: { acl: config.acl, rateLimit: config.rateLimit },
          logLevel: config.log.level as LogLevel,
          queryLog: config.queryLog,
          configDir,
          replicator: new StoreReplicator(store),
          metrics,
          logger,
          generation: () => store.generation,
          onServed: (g, atMs) => store.served(g, atMs),
        })
      : null;
  const dns = pool
    ? null
    : new DnsServer({
        listen: config.listen,
        processor,
        tcpIdleTimeoutMs: config.tcp.idleTimeoutMs,
        tcpMaxConnections: config.tcp.maxConnections,
        tcpMaxConnectionsPerSource: config.tcp.maxConnectionsPerSource,
        guard: { acl: config.acl, rateLimit: config.rateLimit },
        guardCounters: metrics.local,
        maxUdpPayloadBytes: config.maxUdpPayloadBytes,
        udpReceiveBufferBytes: config.udp.receiveBufferBytes,
        onError: (err, where) => logger.warn({ event: 'socket_error', where, err: err.message }, 'socket error'),
        onTcpConnections: (open) => metrics.tcpConnections(open),
      });
  try {
    await (pool ?? dns!).start();
  } catch (err) {
    await (pool ?? dns!).close(0);
    await stopBackends(backends);
    throw err;
  }
  const dnsAddresses = () => (pool ? pool.addresses : dns!.addresses);
  // What the kernel granted the UDP receive buffer: capped by net.core.rmem_max, which only the host can raise.
  const udpBuffer = pool ? pool.udpReceiveBuffer : dns!.udpReceiveBuffer;
  if (udpBuffer !== null && udpBuffer.requestedBytes > 0) {
    const clamped = udpBuffer.grantedBytes < udpBuffer.requestedBytes;
    logger[clamped ? 'warn' : 'info'](
      { event: 'udp_receive_buffer', ...udpBuffer },
      clamped
        ? `UDP receive buffer: asked ${udpBuffer.requestedBytes} bytes, the kernel granted ${udpBuffer.grantedBytes} (net.core.rmem_max ${udpBuffer.rmemMaxBytes ?? 'unknown'}); raise net.core.rmem_max to absorb larger bursts`
        : `UDP receive buffer: ${udpBuffer.grantedBytes} bytes`,
    );
  }
  metrics.servers = dnsAddresses;

  const openQueryLog = (c: Config['queryLog']) =>
    c.enabled
      ? new QueryLog(c, configDir, () => metrics.queryLogged(), (err) => logger.error({ event: 'query_log_failed', path: c.path ?? 'stdout', err: err.message }, 'query log cannot be written; it stops recording (DNS unaffected)'))
      : null;
  // In worker mode each worker writes the query log for the queries it answers; the main thread answers none.
  let queryLog = pool ? null : openQueryLog(config.queryLog);
  processor.setQueryLog(queryLog);
  /** From the stop signal on: reloads are refused and /readyz is 503 (lameduck); DNS still answers. */
  let stopping = false;
  /** From the end of the lameduck on: the listeners close (/healthz 503). */
  let closing = false;
  const stopSignal = new AbortController();
  const admin = opts.serveAdmin && config.admin.enabled
    ? new AdminServer({
        host: config.admin.listen.host,
        port: config.admin.listen.port,
        store,
        metrics,
        logger,
        now,
        healthy: () => !closing && dnsAddresses().length > 0 && (pool === null || pool.live > 0),
        draining: () => stopping,
        info: () => ({ dns: dnsAddresses(), backends: backends.length, workers: pool ? { configured: workerCount, live: pool.live } : null }),
      })
    : null;
  try {
    await admin?.start();
  } catch (err) {
    await (pool ?? dns!).close(0);
    await stopBackends(backends);
    queryLog?.close();
    throw err;
  }
  if (admin !== null && !isLoopback(config.admin.listen.host)) {
    // /v1/services lists the whole registry and /metrics its shape: beyond loopback, something else (a
    // NetworkPolicy, a firewall) must keep them from every client that can reach the DNS port.
    logger.warn(
      { event: 'admin_not_loopback', admin: admin.address },
      `admin listens on ${config.admin.listen.host} (not loopback): /v1/services exposes the whole registry to every client that can reach it; restrict it (NetworkPolicy, firewall) or bind it to 127.0.0.1`,
    );
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
    if (stopping) throw new ReloadError('SVCDNS_RELOAD_STOPPING', 'svcdns is stopping; reload ignored');
    const plan = planReload(current, next);
    // Create everything that can fail before touching what runs: a failure leaves the running config in place.
    const created = new Map<string, Backend>();
    try {
      for (const bc of [...plan.change, ...plan.add]) created.set(backendName(bc), await createBackend(bc, configDir, opts, metrics));
    } catch (err) {
      metrics.configReload(false);
      throw err;
    }
    // Make-before-break (§5.4): the new instances run beside the old ones, their reports held back, until every
    // one has synced. The old ones answer meanwhile; a new one that fails its first sync fails the reload.
    const staged = [...created.values()].map((b) => new StagedBackend(b));
    for (const st of staged) st.backend.start(gated(st.backend, st.sink));
    try {
      await firstSync(staged, next.reload.firstSyncTimeoutMs, stopSignal.signal);
    } catch (err) {
      for (const st of staged) detach.get(st.backend)?.();
      await stopBackends(staged.map((st) => st.backend));
      metrics.configReload(false);
      throw err;
    }

    // The switch: one synchronous step, so a query (and, batched, a worker's replica) sees the old state or the
    // new one, nothing between.
    const retired: Backend[] = [];
    const take = (name: string) => {
      const old = backends.splice(backends.findIndex((b) => b.name === name), 1)[0]!;
      detach.get(old)?.();
      retired.push(old);
    };
    for (const name of plan.remove) {
      take(name);
      store.unregister(name);
      metrics.forgetBackend(name);
    }
    for (const st of staged) {
      const b = st.backend;
      const first = st.latest!;
      const snapshot: ServiceSnapshot = { services: first.services, defaultScope: first.defaultScope };
      if (backends.some((x) => x.name === b.name)) {
        take(b.name);
        store.replace(b.name, b.type, (s) => b.ownsScope(s), () => b.scopeClaim(), snapshot);
      } else {
        register(b);
        store.apply(b.name, snapshot);
      }
      backends.push(b);
      st.attach(sinkFor(b));
    }
    if (plan.answerChanged) {
      // `cache` needs a restart (RESTART_KEYS): the new processor keeps the running budget.
      processor.swap(new QueryProcessor({ responder: answererFor(store, next), maxUdpPayloadBytes: next.maxUdpPayloadBytes, order: next.order, metrics: dnsMetrics, onGeneration: (g) => store.served(g), cacheBytes: current.cache.maxBytes }), next.domains);
      pool?.setAnswerOptions(answerOptions(next), next.maxUdpPayloadBytes);
    }
    if (plan.guardChanged) {
      const guard = { acl: next.acl, rateLimit: next.rateLimit };
      dns?.setGuard(guard);
      pool?.setGuard(guard);
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
    const changed = plan.change.length + plan.add.length + plan.remove.length > 0 || plan.answerChanged || plan.logLevelChanged || plan.queryLogChanged || plan.guardChanged;
    logger[changed ? 'info' : 'debug'](
      { event: 'config_reloaded', kept: plan.keep, changed: plan.change.map(backendName), added: plan.add.map(backendName), removed: plan.remove, answerOptions: plan.answerChanged, guard: plan.guardChanged },
      changed ? 'config reloaded' : 'config reloaded (no change)',
    );
    if (plan.restartRequired.length > 0) {
      logger.warn({ event: 'restart_required', keys: plan.restartRequired }, `restart required for: ${plan.restartRequired.join(', ')} (kept the running values)`);
    }
    // Detached above: whatever they report while stopping goes nowhere.
    await stopBackends(retired);
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
    stop(graceMs = 2000, lameDuckMs = 0) {
      stopped ??= (async () => {
        stopping = true;
        stopSignal.abort(); // a reload waiting for a first sync gives up
        if (lameDuckMs > 0) {
          logger.info({ event: 'lameduck', ms: lameDuckMs }, 'lameduck: /readyz is 503, DNS keeps answering');
          await new Promise((r) => setTimeout(r, lameDuckMs));
        }
        closing = true;
        await reloading;
        await (pool ?? dns!).close(graceMs);
        await stopBackends(backends);
        await admin?.close();
        queryLog?.close();
      })();
      return stopped;
    },
  };
}

/** Whether an admin bind address is loopback only (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host) || /^::ffff:127\./i.test(host);
}

/**
 * A backend instance started by a reload beside the one it replaces: it reports into a holding sink until the
 * reload commits (attach), keeping only its latest snapshot (and an error that came after it).
 */
class StagedBackend {
  readonly backend: Backend;
  latest: ServiceSnapshot | null = null;
  #errorAfter: BackendError | null = null;
  #target: BackendSink | null = null;
  readonly #first = Promise.withResolvers<void>();
  readonly sink: BackendSink;

  constructor(backend: Backend) {
    this.backend = backend;
    this.#first.promise.catch(() => {}); // observed by firstSync(); never an unhandled rejection
    this.sink = {
      snapshot: (snap, receivedAtMs) => {
        if (this.#target) return this.#target.snapshot(snap, receivedAtMs);
        this.latest = snap;
        this.#errorAfter = null;
        this.#first.resolve();
      },
      error: (err) => {
        if (this.#target) return this.#target.error(err);
        if (this.latest === null) this.#first.reject(err);
        else this.#errorAfter = err;
      },
    };
  }

  /** Resolves at the first snapshot; rejects with the error reported before it. */
  get synced(): Promise<void> {
    return this.#first.promise;
  }

  /** The store now holds `latest`: from here on, reports go to `sink`. */
  attach(sink: BackendSink): void {
    this.#target = sink;
    if (this.#errorAfter) sink.error(this.#errorAfter);
  }
}

/** Every staged instance's first snapshot; the first error before it, the timeout or a stop fails the reload. */
async function firstSync(staged: readonly StagedBackend[], timeoutMs: number, stop: AbortSignal): Promise<void> {
  if (staged.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const bounds = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const late = staged.filter((st) => st.latest === null).map((st) => st.backend.name);
      reject(new ReloadError('SVCDNS_RELOAD_FIRST_SYNC_TIMEOUT', `backend ${late.join(', ')} did not sync within ${timeoutMs} ms (reload.firstSyncTimeoutMs); keeping the running config`, late));
    }, timeoutMs);
    onAbort = () => reject(new ReloadError('SVCDNS_RELOAD_STOPPING', 'svcdns is stopping; reload abandoned'));
    stop.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([
      Promise.all(
        staged.map((st) =>
          st.synced.catch((err: unknown) => {
            const e = err as BackendError;
            throw new ReloadError('SVCDNS_RELOAD_FIRST_SYNC_FAILED', `backend ${st.backend.name} failed its first sync (${e.code ?? 'error'}: ${e.message}); keeping the running config`, [st.backend.name], err);
          }),
        ),
      ),
      bounds,
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) stop.removeEventListener('abort', onAbort);
  }
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
    srvTarget: config.srvTarget,
    reverseZones: config.reverseZones,
  };
}

function answererFor(store: Store, config: Config): Answerer {
  return new Answerer(store, answerOptions(config));
}


async function createBackend(bc: AnyBackendConfig, configDir: string, opts: AppOptions, metrics: Metrics): Promise<Backend> {
  const mod = backendModules[bc.type] as BackendModule<AnyBackendConfig>;
  const name = bc.name ?? bc.type;
  const { create } = await mod.load();
  return create(bc, {
    logger: opts.logger.child({ backend: name }),
    configDir,
    env: opts.env ?? process.env,
    metrics: metrics.backendMetrics(name),
  });
}

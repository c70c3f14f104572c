// workers/worker: the composition root of one DNS worker thread (`workers: N`). It owns a store replica fed by
// the main thread (store/replication.ts), its own answerer, processor and answer cache, and UDP+TCP sockets bound
// with SO_REUSEPORT beside its siblings'. It never sees a backend.

import { parentPort, workerData } from 'node:worker_threads';
import { Answerer, type AnswerOptions } from '../answer/answer.ts';
import type { Order } from '../dns/plan.ts';
import { QueryProcessor } from '../dns/processor.ts';
import type { GuardConfig } from '../dns/guard.ts';
import { DnsServer, type ListenSpec, type UdpReceiveBuffer } from '../dns/server.ts';
import { DnsCounters } from '../observability/dns-counters.ts';
import { createLogger, type LogLevel } from '../observability/logger.ts';
import { MeasuredProcessor } from '../observability/measured-processor.ts';
import { QueryLog, type QueryLogConfig } from '../observability/query-log.ts';
import { StoreReplica, type ReplicaMessage } from '../store/replication.ts';
import { Store } from '../store/store.ts';

/** What the main thread hands a worker at start (structured-cloneable). */
export interface WorkerInit {
  readonly index: number;
  readonly listen: readonly ListenSpec[];
  readonly answer: AnswerOptions;
  readonly maxUdpPayloadBytes: number;
  /** This thread's answer-cache budget (config cache.maxBytes ÷ workers). */
  readonly cacheBytes: number;
  readonly tcp: { readonly idleTimeoutMs: number; readonly maxConnections: number; readonly maxConnectionsPerSource: number };
  readonly udp: { readonly receiveBufferBytes: number };
  /** ACL and rate limit: each worker applies them to the queries it answers (its own rate-limit table). */
  readonly guard: GuardConfig;
  readonly counters: SharedArrayBuffer;
  readonly logLevel: LogLevel;
  readonly queryLog: QueryLogConfig;
  readonly configDir: string;
}

export type ToWorker =
  /**
   * The main store's whole state (StoreReplicator.initial()), always the first message. The worker binds its
   * sockets only after applying it: with SO_REUSEPORT the kernel sends a bound socket traffic at once, and an
   * empty replica would answer NXDOMAIN for everything (§5.4).
   */
  | { readonly t: 'init'; readonly ms: readonly ReplicaMessage[]; readonly gen: number }
  /**
   * The store events of one main-thread turn, applied in one turn here (no query sees half of them). `gen`: the
   * main store's generation once they are applied (what this replica then holds), for propagation.
   */
  | { readonly t: 'replica'; readonly ms: readonly ReplicaMessage[]; readonly gen: number }
  | { readonly t: 'answer'; readonly answer: AnswerOptions; readonly maxUdpPayloadBytes: number }
  | { readonly t: 'queryLog'; readonly queryLog: QueryLogConfig }
  | { readonly t: 'guard'; readonly guard: GuardConfig }
  | { readonly t: 'stop'; readonly graceMs: number };

export type FromWorker =
  | { readonly t: 'ready'; readonly addresses: readonly { host: string; port: number }[]; readonly udpReceiveBuffer: UdpReceiveBuffer | null }
  | { readonly t: 'stopped' }
  /**
   * The first answer from the replica holding the main store's generation `gen` was served at `atNs`
   * (process.hrtime: the one monotonic clock every thread of the process shares; each thread's timeOrigin is its
   * own start's wall clock, which a clock step between two starts would set apart): the main thread observes
   * svcdns_propagation_seconds (Store.served), once per change however many workers report it.
   */
  | { readonly t: 'served'; readonly gen: number; readonly atNs: bigint };

/** How often a worker publishes its cache size into its counter block (ms). */
const CACHE_GAUGE_INTERVAL_MS = 1000;

async function main(): Promise<void> {
  const init = workerData as WorkerInit;
  const port = parentPort!;
  const logger = createLogger(init.logLevel).child({ worker: init.index });
  const counters = new DnsCounters(init.counters);
  counters.tcpConnections(0); // a restarted worker inherits its block: no connection is open yet
  let lastLogMs = -Infinity;
  counters.onInternalError = (err, total) => {
    if (Date.now() - lastLogMs < 10_000) return;
    lastLogMs = Date.now();
    logger.error({ event: 'query_internal_error', err: err instanceof Error ? err.stack ?? err.message : String(err), total }, 'exception while answering a query (answered SERVFAIL)');
  };
  const replica = new StoreReplica(new Store());
  // Propagation (issue 14 #4): the main generation this replica holds, and the last one reported as served. The
  // processor calls onGeneration at its first answer of each local generation (an integer compare per query);
  // only then is a message posted, one per replica batch at most.
  let mainGen = -1;
  let reportedGen = -1;
  const onGeneration = () => {
    if (mainGen <= reportedGen) return;
    reportedGen = mainGen;
    port.postMessage({ t: 'served', gen: mainGen, atNs: process.hrtime.bigint() } satisfies FromWorker);
  };
  const processorFor = (answer: AnswerOptions, maxUdp: number) =>
    new QueryProcessor({ responder: new Answerer(replica.store, answer), maxUdpPayloadBytes: maxUdp, order: answer.order as Order, metrics: counters, onGeneration, cacheBytes: init.cacheBytes });
  const processor = new MeasuredProcessor(
    { responder: new Answerer(replica.store, init.answer), maxUdpPayloadBytes: init.maxUdpPayloadBytes, order: init.answer.order, metrics: counters, onGeneration, cacheBytes: init.cacheBytes },
    counters,
    init.answer.domains,
  );
  const openQueryLog = (c: QueryLogConfig) =>
    c.enabled ? new QueryLog(c, init.configDir, () => counters.queryLogged(), (err) => logger.error({ event: 'query_log_failed', err: err.message }, 'query log cannot be written')) : null;
  let queryLog = openQueryLog(init.queryLog);
  processor.setQueryLog(queryLog);

  const server = new DnsServer({
    listen: init.listen,
    processor,
    tcpIdleTimeoutMs: init.tcp.idleTimeoutMs,
    tcpMaxConnections: init.tcp.maxConnections,
    tcpMaxConnectionsPerSource: init.tcp.maxConnectionsPerSource,
    guard: init.guard,
    guardCounters: counters,
    maxUdpPayloadBytes: init.maxUdpPayloadBytes,
    udpReceiveBufferBytes: init.udp.receiveBufferBytes,
    reusePort: true,
    onError: (err, where) => logger.warn({ event: 'socket_error', where, err: err.message }, 'socket error'),
    onTcpConnections: (open) => counters.tcpConnections(open),
  });
  const gauge = setInterval(() => {
    counters.cachedNames = processor.cachedNames;
    counters.cachedBytes = processor.cachedBytes;
  }, CACHE_GAUGE_INTERVAL_MS);
  gauge.unref();

  let initialised!: () => void;
  const holdsState = new Promise<void>((resolve) => (initialised = resolve));
  port.on('message', (msg: ToWorker) => {
    switch (msg.t) {
      case 'init':
        for (const m of msg.ms) replica.apply(m);
        // A change not yet answered by any worker when this one (re)started is answered by its first query too.
        mainGen = msg.gen;
        initialised();
        break;
      case 'replica': {
        const gen = replica.store.generation;
        for (const m of msg.ms) replica.apply(m);
        mainGen = msg.gen;
        // The main store moved for nothing this replica answers from (Service.unhealthy, which replication does
        // not ship): its answers already reflect that generation, and no new local one will report it.
        if (replica.store.generation === gen) onGeneration();
        break;
      }
      case 'answer':
        processor.swap(processorFor(msg.answer, msg.maxUdpPayloadBytes), msg.answer.domains);
        break;
      case 'guard':
        server.setGuard(msg.guard);
        break;
      case 'queryLog': {
        const old = queryLog;
        queryLog = openQueryLog(msg.queryLog);
        processor.setQueryLog(queryLog);
        old?.close();
        break;
      }
      case 'stop':
        clearInterval(gauge);
        void server.close(msg.graceMs).then(() => {
          queryLog?.close();
          counters.tcpConnections(0);
          port.postMessage({ t: 'stopped' } satisfies FromWorker);
          port.close();
        });
        break;
    }
  });
  await holdsState;
  await server.start();
  port.postMessage({ t: 'ready', addresses: server.addresses.map((a) => ({ host: a.host, port: a.port })), udpReceiveBuffer: server.udpReceiveBuffer } satisfies FromWorker);
}

// A failed start rejects: the worker exits with an error, which the pool logs and retries with backoff.
await main();

// workers/pool: `workers: N` — N DNS worker threads on one address via SO_REUSEPORT, fed by the main thread's
// store through replication. The main thread keeps the backends, the store and the admin server: one copy of
// every Consul/Kubernetes watch however many threads answer. A worker that dies is logged and restarted with
// backoff while its siblings keep answering; its counter block is kept, so metrics do not go backwards. A
// (re)started worker binds only once it holds the main store's state (§5.4): no empty replica ever answers.
// Services reach the workers without `unhealthy` (the status page reads the main store; DNS never reads it).
// Propagation (issue 14 #4): each batch carries the main store's generation; the first worker to answer from it
// reports back, and the main thread observes svcdns_propagation_seconds once per change (Store.served).

import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { AnswerOptions } from '../answer/answer.ts';
import { Backoff } from '../backends/backoff.ts';
import type { BoundAddress, ListenSpec, UdpReceiveBuffer } from '../dns/server.ts';
import { DnsCounters } from '../observability/dns-counters.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { QueryLogConfig } from '../observability/query-log.ts';
import type { Service } from '../model/service.ts';
import type { ReplicaMessage, StoreReplicator } from '../store/replication.ts';
import type { GuardConfig } from '../dns/guard.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker.ts';

/** How long a worker may take to apply its initial state and bind its sockets. */
const WORKER_START_TIMEOUT_MS = 10_000;
/** A worker that lived this long before dying is restarted without backoff growth. */
const WORKER_HEALTHY_AFTER_MS = 30_000;

/** What every worker is started with (minus its index and counters), plus what the pool itself needs. */
export interface PoolOptions extends Omit<WorkerInit, 'index' | 'counters'> {
  readonly count: number;
  readonly replicator: StoreReplicator;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** The main store's generation now (the state the messages posted so far bring a replica to). */
  readonly generation?: () => number;
  /** A worker served its first answer from main generation `generation` at `atMs` (epoch ms): Store.served. */
  readonly onServed?: (generation: number, atMs: number) => void;
}

interface Slot {
  readonly index: number;
  readonly counters: SharedArrayBuffer;
  worker: Worker | null;
  ready: boolean;
  startedMs: number;
  readonly backoff: Backoff;
}

export class WorkerPool {
  readonly #o: PoolOptions;
  readonly #slots: Slot[] = [];
  #addresses: BoundAddress[] = [];
  #udpBuffer: UdpReceiveBuffer | null = null;
  #answer: AnswerOptions;
  #maxUdp: number;
  #queryLog: QueryLogConfig;
  #guard: GuardConfig;
  #unsubscribe: (() => void) | null = null;
  #stopping = false;
  /** Store events of the current main-thread turn, posted together at its end (one turn in each worker too). */
  #batch: ReplicaMessage[] = [];
  #flushQueued = false;

  constructor(o: PoolOptions) {
    this.#o = o;
    this.#answer = o.answer;
    this.#maxUdp = o.maxUdpPayloadBytes;
    this.#queryLog = o.queryLog;
    this.#guard = o.guard;
  }

  get addresses(): readonly BoundAddress[] {
    return this.#addresses;
  }

  /** What the kernel granted the first worker's UDP receive buffer (all ask the same), or null before start. */
  get udpReceiveBuffer(): UdpReceiveBuffer | null {
    return this.#udpBuffer;
  }

  /** Workers currently answering. */
  get live(): number {
    return this.#slots.filter((s) => s.ready).length;
  }

  async start(): Promise<void> {
    // Changes reach every running worker in order; a (re)starting worker first gets the full state (initial()).
    this.#unsubscribe = this.#o.replicator.subscribe((m) => {
      this.#batch.push(forWorkers(m));
      if (this.#flushQueued) return;
      this.#flushQueued = true;
      queueMicrotask(() => this.#flush());
    });
    for (let i = 0; i < this.#o.count; i++) {
      const counters = DnsCounters.sharedBuffer();
      this.#o.metrics.addCounters(new DnsCounters(counters));
      this.#slots.push({ index: i, counters, worker: null, ready: false, startedMs: 0, backoff: new Backoff({ initialMs: 100, maxMs: 10_000 }) });
    }
    // The first worker resolves port 0; the others bind the very same ports.
    this.#addresses = await this.#spawn(this.#slots[0]!, this.#o.listen);
    const explicit = this.#addresses.map((a) => ({ host: a.host, port: a.port }));
    await Promise.all(this.#slots.slice(1).map((s) => this.#spawn(s, explicit)));
  }

  /** Terminate one worker as a crash would (operations drills and tests): it is restarted like any other. */
  async kill(index: number): Promise<void> {
    await this.#slots[index]?.worker?.terminate();
  }

  setAnswerOptions(answer: AnswerOptions, maxUdpPayloadBytes: number): void {
    this.#answer = answer;
    this.#maxUdp = maxUdpPayloadBytes;
    this.#broadcast({ t: 'answer', answer, maxUdpPayloadBytes });
  }

  /** New ACL and rate limit (a reload), to every worker and to those (re)started later. */
  setGuard(guard: GuardConfig): void {
    this.#guard = guard;
    this.#broadcast({ t: 'guard', guard });
  }

  setQueryLog(queryLog: QueryLogConfig): void {
    this.#queryLog = queryLog;
    this.#broadcast({ t: 'queryLog', queryLog });
  }

  async close(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#unsubscribe?.();
    await Promise.all(
      this.#slots.map(async (s) => {
        const w = s.worker;
        if (!w) return;
        const exited = new Promise<void>((r) => w.once('exit', () => r()));
        w.postMessage({ t: 'stop', graceMs } satisfies ToWorker);
        const timer = setTimeout(() => void w.terminate(), graceMs + 1000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  /** To every worker that has its initial state, ready or still binding (messages to a port are ordered). */
  #broadcast(msg: ToWorker): void {
    for (const s of this.#slots) if (s.worker) s.worker.postMessage(msg);
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#batch.length === 0) return;
    const ms = this.#batch;
    this.#batch = [];
    this.#broadcast({ t: 'replica', ms, gen: this.#o.generation?.() ?? -1 });
  }

  #spawn(slot: Slot, listen: readonly ListenSpec[]): Promise<BoundAddress[]> {
    const o = this.#o;
    const init: WorkerInit = {
      index: slot.index,
      listen,
      answer: this.#answer,
      maxUdpPayloadBytes: this.#maxUdp,
      cacheBytes: o.cacheBytes,
      tcp: o.tcp,
      udp: o.udp,
      counters: slot.counters,
      logLevel: o.logLevel,
      queryLog: this.#queryLog,
      configDir: o.configDir,
      guard: this.#guard,
    };
    const entry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
    // Events not yet posted are part of initial() below: post them to the other workers first, so this one gets
    // each event exactly once (in its initial state), and every later one in its batches.
    this.#flush();
    const w = new Worker(entry, { workerData: init });
    slot.worker = w;
    // Queued until the worker listens; it binds its sockets only after applying this (§5.4: no empty replica
    // ever answers). Answer options and query log went in `init`; later changes reach it by #broadcast.
    w.postMessage({ t: 'init', ms: o.replicator.initial().map(forWorkers), gen: o.generation?.() ?? -1 } satisfies ToWorker);
    slot.ready = false;
    slot.startedMs = Date.now();
    return new Promise<BoundAddress[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`worker ${slot.index} did not bind within ${WORKER_START_TIMEOUT_MS} ms`));
        void w.terminate();
      }, WORKER_START_TIMEOUT_MS);
      w.on('message', (msg: FromWorker) => {
        if (msg.t === 'served') {
          // The worker's monotonic stamp on this thread's receiptClock: now, minus how long ago it was taken.
          o.onServed?.(msg.gen, performance.timeOrigin + performance.now() - Number(process.hrtime.bigint() - msg.atNs) / 1e6);
          return;
        }
        if (msg.t !== 'ready') return;
        clearTimeout(timer);
        slot.ready = true;
        this.#udpBuffer ??= msg.udpReceiveBuffer;
        resolve(msg.addresses.map((a) => ({ host: a.host, port: a.port })));
      });
      w.on('error', (err) => {
        o.logger.error({ event: 'worker_error', worker: slot.index, err: err.message }, 'DNS worker failed');
        clearTimeout(timer);
        reject(err);
      });
      w.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`worker ${slot.index} exited with code ${code} before it was ready`)); // no-op once resolved
        slot.ready = false;
        slot.worker = null;
        // Its gauges (open TCP connections, cached names) describe nothing any more; its counters stay.
        const c = new DnsCounters(slot.counters);
        c.tcpConnections(0);
        c.cachedNames = 0;
        c.cachedBytes = 0;
        if (this.#stopping) return;
        if (Date.now() - slot.startedMs > WORKER_HEALTHY_AFTER_MS) slot.backoff.reset();
        const delay = slot.backoff.next();
        o.logger.error({ event: 'worker_exit', worker: slot.index, code, restartInMs: delay, live: this.live }, 'DNS worker exited; restarting it (the other workers keep answering)');
        const ports = this.#addresses.map((a) => ({ host: a.host, port: a.port }));
        setTimeout(() => {
          if (this.#stopping) return;
          this.#spawn(slot, ports).then(
            () => o.logger.info({ event: 'worker_restarted', worker: slot.index }, 'DNS worker restarted'),
            () => {}, // its exit handler schedules the next try
          );
        }, delay).unref();
      });
    });
  }
}

/**
 * A replica message as workers get it: services without `unhealthy` (workers answer DNS, which never reads it, and
 * the status page reads the main store), so it is neither cloned nor kept per worker. Services without one are
 * passed as they are (no copy); the message itself is copied only when one of its services had a list.
 */
function forWorkers(m: ReplicaMessage): ReplicaMessage {
  if (m.t !== 'apply') return m;
  if (m.services && m.services.some(([, svc]) => svc.unhealthy !== undefined)) return { ...m, services: m.services.map(([k, svc]) => [k, strip(svc)] as const) };
  if (m.changes && m.changes.some(([, svc]) => svc?.unhealthy !== undefined)) return { ...m, changes: m.changes.map(([k, svc]) => [k, svc && strip(svc)] as const) };
  return m;
}

function strip(svc: Service): Service {
  if (svc.unhealthy === undefined) return svc;
  const { unhealthy: _, ...served } = svc;
  return served;
}

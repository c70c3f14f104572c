// observability/metrics: the Prometheus registry (one per app, injected — never prom-client's global one) and
// every svcdns_* metric. Hot-path counters (DnsMetrics, answer latency, TCP connections) are plain typed arrays
// bumped without allocation; prom-client reads them only at scrape time through `collect()` callbacks or a
// `get()` override. Backend state is read from the store at scrape time, so it can never drift from it.

import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import client from 'prom-client';
import type { BackendMetrics } from '../backends/backend.ts';
import type { DnsMetrics } from '../dns/processor.ts';
import {
  ANSWER_LATENCY_BUCKETS_SECONDS,
  DnsCounters,
  FastHistogram,
  type HistogramReading,
  N_RCODES,
  RCODE_LABELS,
  REQUEST_DURATION_BUCKETS_SECONDS,
  SIZE_BUCKETS_BYTES,
  TYPE_LABELS,
  ZoneSlots,
} from './dns-counters.ts';
import type { Store } from '../store/store.ts';

const TRANSPORTS = ['udp', 'tcp'] as const;
/** CoreDNS's family label values: 1 = IPv4, 2 = IPv6. */
const FAMILIES = ['1', '2'] as const;

/** Store swap buckets (seconds): one changed service is µs; a 10k-service first sync can take tens of ms. */
export const PROPAGATION_BUCKETS_SECONDS = [0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1];

/** End to end, event received by the backend -> first answer reflecting it (issue 14 #4): watches, polls, debounces. */
export const END_TO_END_PROPAGATION_BUCKETS_SECONDS = [0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Per backend, for the status page: how many changes were observed, their mean and the last one. */
export interface PropagationSummary {
  readonly backend: string;
  readonly count: number;
  readonly meanSeconds: number;
  readonly lastSeconds: number;
  readonly maxSeconds: number;
}

export { ANSWER_LATENCY_BUCKETS_SECONDS, FastHistogram };

/**
 * A prom-client Histogram whose values come from a FastHistogram at scrape time. The registry reads
 * `getForPromString()` (text) or `get()` (JSON); both are overridden.
 */
class ArrayBackedHistogram extends client.Histogram<string> {
  readonly #h: () => readonly FastHistogram[];
  readonly #name: string;
  readonly #help: string;
  constructor(name: string, help: string, bounds: readonly number[], h: () => readonly FastHistogram[], registry: client.Registry) {
    super({ name, help, buckets: [...bounds], registers: [registry] });
    this.#h = h;
    this.#name = name;
    this.#help = help;
  }
  #snapshot() {
    const hs = this.#h();
    const bounds = hs[0]!.bounds;
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    let acc = 0;
    let count = 0;
    let total = 0;
    for (const h of hs) {
      count += h.count;
      total += h.sum;
    }
    for (let i = 0; i < bounds.length; i++) {
      for (const h of hs) acc += h.counts[i]!;
      values.push({ metricName: `${this.#name}_bucket`, labels: { le: bounds[i]! }, value: acc });
    }
    const h = { count, sum: total };
    values.push({ metricName: `${this.#name}_bucket`, labels: { le: '+Inf' }, value: h.count });
    values.push({ metricName: `${this.#name}_sum`, labels: {}, value: h.sum });
    values.push({ metricName: `${this.#name}_count`, labels: {}, value: h.count });
    return { name: this.#name, help: this.#help, type: 'histogram', values, aggregator: 'sum' };
  }
  async getForPromString() {
    return this.#snapshot();
  }
  override async get() {
    return this.#snapshot() as unknown as Awaited<ReturnType<client.Histogram<string>['get']>>;
  }
}

/** A prom-client Histogram whose labelled series are read from DnsCounters blocks at scrape time. */
class ReadingHistogram extends client.Histogram<string> {
  readonly #series: () => Iterable<{ labels: Record<string, string>; reading: HistogramReading }>;
  readonly #bounds: readonly number[];
  readonly #name: string;
  readonly #help: string;
  constructor(name: string, help: string, labelNames: string[], bounds: readonly number[], series: () => Iterable<{ labels: Record<string, string>; reading: HistogramReading }>, registry: client.Registry) {
    super({ name, help, labelNames, buckets: [...bounds], registers: [registry] });
    this.#series = series;
    this.#bounds = bounds;
    this.#name = name;
    this.#help = help;
  }
  #snapshot() {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const { labels, reading } of this.#series()) {
      if (reading.count === 0) continue;
      for (let i = 0; i < this.#bounds.length; i++) values.push({ metricName: `${this.#name}_bucket`, labels: { ...labels, le: this.#bounds[i]! }, value: reading.cumulative[i]! });
      values.push({ metricName: `${this.#name}_bucket`, labels: { ...labels, le: '+Inf' }, value: reading.count });
      values.push({ metricName: `${this.#name}_sum`, labels, value: reading.sum });
      values.push({ metricName: `${this.#name}_count`, labels, value: reading.count });
    }
    return { name: this.#name, help: this.#help, type: 'histogram', values, aggregator: 'sum' };
  }
  async getForPromString() {
    return this.#snapshot();
  }
  override async get() {
    return this.#snapshot() as unknown as Awaited<ReturnType<client.Histogram<string>['get']>>;
  }
}

/** svcdns_build_info labels: the package version, the source revision (SVCDNS_REVISION or the checkout's HEAD). */
export function buildInfo(env: Readonly<Record<string, string | undefined>> = process.env): { version: string; revision: string; nodejs: string } {
  const root = new URL('../../', import.meta.url);
  let version = 'unknown';
  try {
    version = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string }).version;
  } catch {
    // not beside its package.json (bundled): unknown
  }
  let revision = env.SVCDNS_REVISION ?? '';
  if (revision === '') {
    try {
      const head = readFileSync(new URL('.git/HEAD', root), 'utf8').trim();
      const ref = /^ref: (.+)$/.exec(head)?.[1];
      revision = ref === undefined ? head : readFileSync(new URL(`.git/${ref}`, root), 'utf8').trim();
    } catch {
      revision = 'unknown'; // an installed copy without .git and no SVCDNS_REVISION
    }
  }
  return { version, revision: /^[0-9a-f]{7,64}$/.test(revision) ? revision.slice(0, 12) : revision === '' ? 'unknown' : revision, nodejs: process.version };
}

/** prom-client default metrics that break the naming rules (gauges named _total); their unsuffixed twins stay. */
const NONCONFORMING_DEFAULT_METRICS = ['svcdns_nodejs_active_handles_total', 'svcdns_nodejs_active_requests_total', 'svcdns_nodejs_active_resources_total'];

export interface MetricsOptions {
  readonly store: Store;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Also export prom-client's process/Node.js metrics with the svcdns_ prefix (default true). */
  readonly processMetrics?: boolean;
  /** The configured domains (the "zone" label); the app's MeasuredProcessor shares `metrics.zones`. */
  readonly domains?: readonly string[];
  /** The TCP connection cap (tcp.maxConnections), exported so an alert can compare the open count with it. */
  readonly tcpMaxConnections?: number;
}

/** Minimum gap between two log lines about internal errors on the query path (ms): a bug must not flood logs. */
const INTERNAL_ERROR_LOG_INTERVAL_MS = 10_000;

export class Metrics implements DnsMetrics {
  readonly registry = new client.Registry();
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #now: () => number;

  /** This thread's DNS counters; worker threads add theirs with addCounters(). */
  readonly local = new DnsCounters();
  readonly #blocks: DnsCounters[] = [this.local];
  #lastInternalErrorLogMs = -Infinity;
  readonly answerLatency: FastHistogram = this.local.latency;
  readonly #propagation: client.Histogram<'backend'>;
  readonly #endToEnd: client.Histogram<'backend'>;
  readonly #endToEndSummary = new Map<string, { count: number; sum: number; last: number; max: number }>();
  readonly #reloads: client.Counter<'result'>;
  readonly #lastReload: client.Gauge;
  /** A function returning the number of cached names (set by the app; the processor may be swapped). */
  cachedNames: () => number = () => 0;
  /** A function returning the bytes the main thread's answer cache accounts for (set by the app). */
  cachedBytes: () => number = () => 0;
  /** Zone slots of the "zone" label (shared with the main thread's MeasuredProcessor). */
  readonly zones: ZoneSlots;
  /** The bound DNS listen addresses (the "server" label; set by the app once bound). */
  servers: () => readonly { readonly host: string; readonly port: number }[] = () => [];
  /** svcdns_dns_tcp_max_connections (set by the app: tcp.maxConnections × threads answering DNS). */
  tcpMaxConnections: number;

  constructor(opts: MetricsOptions) {
    this.#store = opts.store;
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.zones = new ZoneSlots(opts.domains ?? []);
    this.tcpMaxConnections = opts.tcpMaxConnections ?? 0;
    this.local.onInternalError = (err, total) => this.#logInternalError(err, total);
    const r = this.registry;
    const self = this;
    /**
     * The "server" label: svcdns has one server block (CoreDNS's term) whatever the number of listen addresses,
     * so one value, `dns://` and the bound addresses (`dns://127.0.0.1:8653`, `dns://0.0.0.0:8053,[::]:8053`).
     */
    const serverLabel = () => `dns://${self.servers().map((a) => (isIPv6(a.host) ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)).join(',')}`;

    new client.Counter({
      name: 'svcdns_dns_requests_total',
      help: 'DNS request messages received, by zone, transport (proto), client address family (1 IPv4, 2 IPv6) and query type (CoreDNS coredns_dns_requests_total). Zone "." is outside every configured domain.',
      labelNames: ['server', 'zone', 'proto', 'family', 'type'],
      registers: [r],
      collect() {
        this.reset();
        const blocks = self.#blocks;
        const server = serverLabel();
        for (let z = 0; z < self.zones.labels.length; z++) {
          for (let tr = 0; tr < 2; tr++) {
            for (let f = 0; f < 2; f++) {
              for (let t = 0; t < TYPE_LABELS.length; t++) {
                const v = DnsCounters.requests(blocks, z, tr, f, t);
                if (v > 0) this.inc({ server, zone: self.zones.labels[z]!, proto: TRANSPORTS[tr]!, family: FAMILIES[f]!, type: TYPE_LABELS[t]! }, v);
              }
            }
          }
        }
      },
    });
    new client.Counter({
      name: 'svcdns_dns_responses_total',
      help: 'DNS responses sent, by zone, query type, response code and transport (CoreDNS coredns_dns_responses_total).',
      labelNames: ['server', 'zone', 'type', 'rcode', 'transport'],
      registers: [r],
      collect() {
        this.reset();
        const blocks = self.#blocks;
        const server = serverLabel();
        for (let z = 0; z < self.zones.labels.length; z++) {
          for (let t = 0; t < TYPE_LABELS.length; t++) {
            for (let rc = 0; rc < N_RCODES; rc++) {
              for (let tr = 0; tr < 2; tr++) {
                const v = DnsCounters.response(blocks, z, t, rc, tr);
                if (v > 0) this.inc({ server, zone: self.zones.labels[z]!, type: TYPE_LABELS[t]!, rcode: RCODE_LABELS[rc]!, transport: TRANSPORTS[tr]! }, v);
              }
            }
          }
        }
      },
    });
    const perProto = (read: (blocks: readonly DnsCounters[], z: number, tr: number) => HistogramReading) =>
      function* () {
        const server = serverLabel();
        for (let z = 0; z < self.zones.labels.length; z++) {
          for (let tr = 0; tr < 2; tr++) yield { labels: { server, zone: self.zones.labels[z]!, proto: TRANSPORTS[tr]! }, reading: read(self.#blocks, z, tr) };
        }
      };
    new ReadingHistogram(
      'svcdns_dns_request_size_bytes',
      'Size of DNS request messages (without the TCP length prefix), by zone and transport.',
      ['server', 'zone', 'proto'],
      SIZE_BUCKETS_BYTES,
      perProto(DnsCounters.requestSize),
      r,
    );
    new ReadingHistogram(
      'svcdns_dns_response_size_bytes',
      'Size of DNS response messages sent, by zone and transport.',
      ['server', 'zone', 'proto'],
      SIZE_BUCKETS_BYTES,
      perProto(DnsCounters.responseSize),
      r,
    );
    new ReadingHistogram(
      'svcdns_dns_request_duration_seconds',
      'Time from a request message read from its socket to its encoded response handed back for sending, by zone and query type (CoreDNS coredns_dns_request_duration_seconds; time in the kernel queue is not visible to Node).',
      ['server', 'zone', 'type'],
      REQUEST_DURATION_BUCKETS_SECONDS,
      function* () {
        const server = serverLabel();
        for (let z = 0; z < self.zones.labels.length; z++) {
          for (let t = 0; t < TYPE_LABELS.length; t++) yield { labels: { server, zone: self.zones.labels[z]!, type: TYPE_LABELS[t]! }, reading: DnsCounters.duration(self.#blocks, z, t) };
        }
      },
      r,
    );
    const build = buildInfo();
    new client.Gauge({
      name: 'svcdns_build_info',
      help: 'Always 1; the labels say which build runs: package version, source revision, Node.js version.',
      labelNames: ['version', 'revision', 'nodejs'],
      registers: [r],
    }).set(build, 1);
    new client.Gauge({
      name: 'svcdns_dns_tcp_max_connections',
      help: 'The DNS TCP connection cap: tcp.maxConnections times the threads answering DNS (each has its own cap); a connection beyond it is dropped at accept.',
      registers: [r],
      collect() {
        this.set(self.tcpMaxConnections);
      },
    });
    new client.Counter({
      name: 'svcdns_dns_dropped_total',
      help: 'DNS messages dropped without a response (too short for a header, or QR=1; dns-behaviour §5.5).',
      labelNames: ['transport'],
      registers: [r],
      collect() {
        this.reset();
        for (let tr = 0; tr < 2; tr++) this.inc({ transport: TRANSPORTS[tr]! }, DnsCounters.dropped(self.#blocks, tr));
      },
    });
    new client.Counter({
      name: 'svcdns_dns_truncated_responses_total',
      help: 'DNS responses sent with TC=1 because the answer did not fit (dns-behaviour §4.2).',
      labelNames: ['transport'],
      registers: [r],
      collect() {
        this.reset();
        for (let tr = 0; tr < 2; tr++) this.inc({ transport: TRANSPORTS[tr]! }, DnsCounters.truncated(self.#blocks, tr));
      },
    });
    new client.Counter({
      name: 'svcdns_dns_cache_hits_total',
      help: 'Queries answered from the encoded-answer cache.',
      registers: [r],
      collect() {
        this.reset();
        this.inc(DnsCounters.cacheCount(self.#blocks, true));
      },
    });
    new client.Counter({
      name: 'svcdns_dns_cache_misses_total',
      help: 'Queries that had to be planned and encoded (cache miss).',
      registers: [r],
      collect() {
        this.reset();
        this.inc(DnsCounters.cacheCount(self.#blocks, false));
      },
    });
    new client.Gauge({
      name: 'svcdns_dns_cache_names',
      help: 'Query names currently held in the encoded-answer cache.',
      registers: [r],
      collect() {
        this.set(self.cachedNames() + DnsCounters.cachedNames(self.#blocks));
      },
    });
    new client.Gauge({
      name: 'svcdns_dns_cache_bytes',
      help: 'Bytes the encoded-answer caches account for (encoded answers plus measured per-entry heap), all threads.',
      registers: [r],
      collect() {
        this.set(self.cachedBytes() + DnsCounters.cachedBytes(self.#blocks));
      },
    });
    new client.Counter({
      name: 'svcdns_dns_internal_errors_total',
      help: 'Exceptions inside the query handler, each answered SERVFAIL.',
      registers: [r],
      collect() {
        this.reset();
        this.inc(DnsCounters.internalErrors(self.#blocks));
      },
    });
    new client.Gauge({
      name: 'svcdns_dns_tcp_connections',
      help: 'Open DNS TCP connections.',
      registers: [r],
      collect() {
        this.set(DnsCounters.tcpOpen(self.#blocks));
      },
    });
    new client.Counter({
      name: 'svcdns_dns_tcp_connections_total',
      help: 'DNS TCP connections accepted.',
      registers: [r],
      collect() {
        this.reset();
        this.inc(DnsCounters.tcpAccepted(self.#blocks));
      },
    });
    new client.Counter({
      name: 'svcdns_dns_tcp_connections_refused_total',
      help: 'DNS TCP connections closed at accept because their source address held tcp.maxConnectionsPerSource already.',
      registers: [r],
      collect() {
        this.reset();
        this.inc(DnsCounters.tcpPerSourceRefused(self.#blocks));
      },
    });
    new client.Counter({
      name: 'svcdns_acl_requests_total',
      help: 'DNS messages evaluated against the client ACL (acl:), by the action taken (no matching rule: allow).',
      labelNames: ['action'],
      registers: [r],
      collect() {
        this.reset();
        ['allow', 'refuse', 'drop'].forEach((action, i) => this.inc({ action }, DnsCounters.aclActions(self.#blocks, i)));
      },
    });
    new client.Counter({
      name: 'svcdns_rate_limited_responses_total',
      help: 'UDP responses held back by response rate limiting (rateLimit:): dropped, or slipped (sent empty with TC=1).',
      labelNames: ['action'],
      registers: [r],
      collect() {
        this.reset();
        this.inc({ action: 'dropped' }, DnsCounters.rateLimited(self.#blocks, false));
        this.inc({ action: 'slipped' }, DnsCounters.rateLimited(self.#blocks, true));
      },
    });
    new ArrayBackedHistogram(
      'svcdns_dns_answer_duration_seconds',
      'Time from a query message handed to the processor to its encoded response (excludes socket I/O).',
      ANSWER_LATENCY_BUCKETS_SECONDS,
      () => self.#blocks.map((b) => b.latency),
      r,
    );
    new client.Counter({
      name: 'svcdns_query_log_records_total',
      help: 'Queries written to the sampled query log.',
      registers: [r],
      collect() {
        this.reset();
        this.inc(DnsCounters.queryLogged(self.#blocks));
      },
    });

    // Backends: read from the store at scrape time.
    new client.Gauge({
      name: 'svcdns_backend_instances',
      help: 'Healthy instances the backend currently serves (its last snapshot, kept while stale).',
      labelNames: ['backend', 'type'],
      registers: [r],
      collect() {
        this.reset();
        for (const b of self.#store.status()) this.set({ backend: b.name, type: b.type }, b.instances);
      },
    });
    new client.Gauge({
      name: 'svcdns_backend_services',
      help: 'Services in the backend\'s last snapshot.',
      labelNames: ['backend', 'type'],
      registers: [r],
      collect() {
        this.reset();
        for (const b of self.#store.status()) this.set({ backend: b.name, type: b.type }, b.services);
      },
    });
    new client.Gauge({
      name: 'svcdns_backend_state',
      help: 'Backend sync state: 1 for the current state (syncing, synced, stale), 0 for the others.',
      labelNames: ['backend', 'type', 'state'],
      registers: [r],
      collect() {
        this.reset();
        for (const b of self.#store.status()) {
          for (const s of ['syncing', 'synced', 'stale'] as const) this.set({ backend: b.name, type: b.type, state: s }, b.state === s ? 1 : 0);
        }
      },
    });
    new client.Gauge({
      name: 'svcdns_backend_last_sync_age_seconds',
      help: 'Seconds since the backend last delivered a snapshot (absent before its first one). Event-driven backends deliver only on change, so alert on svcdns_backend_state{state="stale"}, not on this alone.',
      labelNames: ['backend'],
      registers: [r],
      collect() {
        this.reset();
        const now = self.#now();
        for (const b of self.#store.status()) if (b.lastSyncMs !== null) this.set({ backend: b.name }, Math.max(0, now - b.lastSyncMs) / 1000);
      },
    });
    new client.Gauge({
      name: 'svcdns_backend_last_sync_timestamp_seconds',
      help: 'Unix time of the backend\'s last snapshot (absent before its first one).',
      labelNames: ['backend'],
      registers: [r],
      collect() {
        this.reset();
        for (const b of self.#store.status()) if (b.lastSyncMs !== null) this.set({ backend: b.name }, b.lastSyncMs / 1000);
      },
    });
    this.#endToEnd = new client.Histogram({
      name: 'svcdns_propagation_seconds',
      help: 'Time from the backend receiving a change (watch event, blocking query return, file change notification) to the first DNS answer served from it.',
      labelNames: ['backend'],
      buckets: END_TO_END_PROPAGATION_BUCKETS_SECONDS,
      registers: [r],
    });
    opts.store.onPropagated((backend, seconds) => this.propagated(backend, seconds));
    this.#propagation = new client.Histogram({
      name: 'svcdns_backend_propagation_seconds',
      help: 'Time from a backend handing over a snapshot to the store serving it (merge and swap).',
      labelNames: ['backend'],
      buckets: PROPAGATION_BUCKETS_SECONDS,
      registers: [r],
    });
    new client.Gauge({
      name: 'svcdns_store_generation',
      help: 'Generation of the served data; grows on every change (the SOA serial is derived from it).',
      registers: [r],
      collect() {
        this.set(self.#store.generation);
      },
    });
    this.#reloads = new client.Counter({
      name: 'svcdns_config_reloads_total',
      help: 'Config reloads (SIGHUP or file change), by result.',
      labelNames: ['result'],
      registers: [r],
    });
    this.#reloads.inc({ result: 'success' }, 0);
    this.#reloads.inc({ result: 'failure' }, 0);
    this.#lastReload = new client.Gauge({
      name: 'svcdns_config_last_reload_success_timestamp_seconds',
      help: 'Unix time of the last successful config load (start or reload).',
      registers: [r],
    });
    this.#lastReload.set(this.#now() / 1000);
    if (opts.processMetrics !== false) {
      client.collectDefaultMetrics({ register: r, prefix: 'svcdns_' });
      for (const n of NONCONFORMING_DEFAULT_METRICS) r.removeSingleMetric(n);
    }
  }

  // ---- DnsMetrics (hot path: index arithmetic on typed arrays, no allocation) ----

  response(qtype: number, rcode: number, tcp: boolean, truncated: boolean): void {
    this.local.response(qtype, rcode, tcp, truncated);
  }

  cache(hit: boolean): void {
    this.local.cache(hit);
  }

  internalError(err: unknown): void {
    this.local.internalError(err);
  }

  #logInternalError(err: unknown, total: number): void {
    const now = this.#now();
    if (now - this.#lastInternalErrorLogMs >= INTERNAL_ERROR_LOG_INTERVAL_MS) {
      this.#lastInternalErrorLogMs = now;
      this.#logger.error(
        { event: 'query_internal_error', err: err instanceof Error ? err.stack ?? err.message : String(err), total },
        'exception while answering a query (answered SERVFAIL; further ones logged at most every 10 s)',
      );
    }
  }

  // ---- other sources ----

  readonly #backendGauges = new Map<string, Map<string, () => number | null>>();
  readonly #backendCounters = new Map<string, client.Counter<'backend'>>();

  /**
   * The metrics hook a backend named `backend` gets in its context (BackendContext.metrics). Each name is one
   * family labelled `backend`; a later instance of the same backend (a reload) takes over its gauge readers and
   * adds to the same counters.
   */
  backendMetrics(backend: string): BackendMetrics {
    const check = (name: string, counter: boolean) => {
      if (!/^[a-z][a-z0-9]*_[a-z0-9_]+$/.test(name) || counter !== name.endsWith('_total')) throw new Error(`bad backend metric name ${name}`);
      return `svcdns_${name}`;
    };
    return {
      gauge: (name, help, read) => {
        const full = check(name, false);
        let readers = this.#backendGauges.get(full);
        if (readers === undefined) {
          const rs = (readers = new Map());
          this.#backendGauges.set(full, rs);
          new client.Gauge({
            name: full,
            help,
            labelNames: ['backend'],
            registers: [this.registry],
            collect() {
              this.reset();
              for (const [b, r] of rs) {
                const v = r();
                if (v !== null) this.set({ backend: b }, v);
              }
            },
          });
        }
        readers.set(backend, read);
      },
      counter: (name, help) => {
        const full = check(name, true);
        let c = this.#backendCounters.get(full);
        if (c === undefined) {
          c = new client.Counter({ name: full, help, labelNames: ['backend'], registers: [this.registry] });
          this.#backendCounters.set(full, c);
        }
        const counter = c;
        counter.inc({ backend }, 0);
        return (n = 1) => counter.inc({ backend }, n);
      },
    };
  }

  /** A backend removed by a reload: its gauges disappear (its counters stay, as counters do). */
  forgetBackend(backend: string): void {
    for (const readers of this.#backendGauges.values()) readers.delete(backend);
  }

  /** Count a worker thread's block too (workers: N). */
  addCounters(block: DnsCounters): void {
    this.#blocks.push(block);
  }

  /** DnsServer.onTcpConnections: called with the open count after each open and close. */
  tcpConnections(open: number): void {
    this.local.tcpConnections(open);
  }

  /** Store.onPropagated: one change of `backend` reached its first answer after `seconds`. */
  propagated(backend: string, seconds: number): void {
    this.#endToEnd.observe({ backend }, seconds);
    let e = this.#endToEndSummary.get(backend);
    if (e === undefined) this.#endToEndSummary.set(backend, (e = { count: 0, sum: 0, last: 0, max: 0 }));
    e.count++;
    e.sum += seconds;
    e.last = seconds;
    if (seconds > e.max) e.max = seconds;
  }

  /** The answer cache's figures across threads (the status page). */
  cacheFigures(): { hits: number; misses: number; names: number } {
    return { hits: DnsCounters.cacheCount(this.#blocks, true), misses: DnsCounters.cacheCount(this.#blocks, false), names: this.cachedNames() + DnsCounters.cachedNames(this.#blocks) };
  }

  /** End-to-end propagation per backend so far (the status page). */
  propagationSummary(): PropagationSummary[] {
    return [...this.#endToEndSummary].map(([backend, e]) => ({ backend, count: e.count, meanSeconds: e.sum / e.count, lastSeconds: e.last, maxSeconds: e.max }));
  }

  /** SupervisorHooks.onSnapshot. */
  snapshotApplied(backend: string, swapMs: number): void {
    this.#propagation.observe({ backend }, swapMs / 1000);
  }

  queryLogged(): void {
    this.local.queryLogged();
  }

  configReload(ok: boolean): void {
    this.#reloads.inc({ result: ok ? 'success' : 'failure' });
    if (ok) this.#lastReload.set(this.#now() / 1000);
  }

  /** Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}

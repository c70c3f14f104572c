// backends/consul/consul: the Consul catalog backend — per datacenter a blocking watch on /v1/catalog/services
// and one on /v1/health/service/<name> per service (started and stopped as services come and go), folded into
// full snapshots of healthy instances; SERVFAIL until the first full sync (§5.4), last known data while Consul
// fails afterwards (§6.3).

import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Backend, BackendContext, BackendSink } from '../backend.ts';
import { BackendError } from '../backend.ts';
import { Backoff } from '../backoff.ts';
import { claimOwns, type ScopeClaim, type Service } from '../../model/service.ts';
import { serviceKey } from '../../model/service.ts';
import { isLabel } from '../../model/names.ts';
import type { ConsulBackendConfig } from './config.ts';
import { CONTROL_SOCKETS, resolveAccess } from './config.ts';
import type { ConsulReply } from './http.ts';
import { AbortedError, ConsulHttp } from './http.ts';
import { makeService, nodeAddressKey, sameServed, translateHealth } from './translate.ts';
import type { LoopHandler, LoopOptions, LoopPools } from './watch.ts';
import { BlockingLoop, Semaphore, sleep } from './watch.ts';
import { SnapshotMap } from '../snapshot-map.ts';
import { HintChecks } from './hint-checks.ts';

/** Bound on remembered "warn once" keys, so churn of bad names cannot grow memory without limit. */
const MAX_WARNED_KEYS = 10_000;

/** What a service watch reports to: the backend's handlers, one object for every watch. */
interface WatchHooks {
  health(dc: Datacenter, name: string, w: ServiceWatch, reply: ConsulReply): void;
  ok(key: object): void;
  fail(key: object, err: BackendError): Promise<void>;
}

/** One service's health watch. Its own loop handler, so 10,000 watches hold no closures each (issue 11 item 4). */
class ServiceWatch implements LoopHandler {
  readonly #dc: Datacenter;
  readonly #hooks: WatchHooks;
  /** Scope name (lowercase label). */
  readonly name: string;
  /** Name as Consul spells it (path segment). */
  readonly consulName: string;
  readonly loop: BlockingLoop;
  service: Service | null = null;
  /** Nodes with an instance of this service (healthy or not), for node-level check hints. */
  nodes: string[] = [];
  /** The catalog reply that last listed this service (Datacenter.catalogGen), to find removed ones without a set. */
  listed: number;

  constructor(dc: Datacenter, name: string, consulName: string, listed: number, hooks: WatchHooks, opts: LoopOptions, query: Readonly<Record<string, string | undefined>>) {
    this.#dc = dc;
    this.#hooks = hooks;
    this.name = name;
    this.consulName = consulName;
    this.listed = listed;
    this.loop = new BlockingLoop(opts, `/v1/health/service/${encodeURIComponent(consulName)}`, query, this);
  }

  onData(reply: ConsulReply): void {
    this.#hooks.health(this.#dc, this.name, this, reply);
  }

  onOk(): void {
    this.#hooks.ok(this.loop);
  }

  onError(err: BackendError): Promise<void> {
    return this.#hooks.fail(this.loop, err);
  }
}

interface Datacenter {
  /** Scope label (lowercase). */
  readonly scope: string;
  /** `?dc=` value, or undefined for the agent's own datacenter as discovered. */
  readonly dcParam: string | undefined;
  readonly catalog: BlockingLoop;
  catalogSynced: boolean;
  /** Counts catalog replies (ServiceWatch.listed). */
  catalogGen: number;
  /** Scope name (lowercase label) → watch. */
  readonly watches: Map<string, ServiceWatch>;
  /**
   * Node → services with an instance there (for hints from node-level checks such as serfHealth). Arrays, not
   * Sets: 1,000 nodes × 100 services each cost 0.8 MB as arrays, 2.5 MB as Sets (issue 11 item 4).
   */
  readonly nodeServices: Map<string, string[]>;
  /** Change hints while watches outnumber blocking slots: a watch on the non-passing checks. */
  hint: BlockingLoop | null;
  /** What the hint watch's last reply listed (reset with the watch). */
  hintChecks: HintChecks;
  /**
   * Beside the hint: a blocking watch on /v1/catalog/nodes. A node's changed address moves the index of every
   * service on that node (Consul re-indexes them: node data is part of every health reply) but neither the
   * catalog's services index nor any check, so neither the sweep nor the hint would see it.
   */
  nodesWatch: BlockingLoop | null;
  /** Node → what answers read of it (Address, lan_ipv4, lan_ipv6), from the nodes watch's last reply; null until its first. */
  nodeAddrs: Map<string, string> | null;
  /** An index sweep runs (see #sweep); `sweepAgain`: the catalog index moved again meanwhile. */
  sweeping: boolean;
  sweepAgain: boolean;
}

/**
 * A filter no instance matches (Consul sets an empty service ID to the service name), so a probe of
 * /v1/health/service/<name> answers `[]` with the service's own X-Consul-Index: Consul filters after the query.
 */
export const INDEX_PROBE_FILTER = 'Service.ID == ""';

export interface ConsulBackendOptions {
  /** Monotonic clock, ms (injected for tests). */
  readonly now?: () => number;
  readonly random?: () => number;
}

export class ConsulBackend implements Backend {
  readonly name: string;
  readonly type = 'consul';
  readonly #cfg: ConsulBackendConfig;
  readonly #ctx: BackendContext;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #abort = new AbortController();
  #sink: BackendSink | null = null;
  #http: ConsulHttp | null = null;
  #agentScope: string | null = null;
  readonly #dcs = new Map<string, Datacenter>();
  readonly #pools: LoopPools;
  /** Catalog loops never queue behind 5,000 service watches: new services must be seen at once. */
  readonly #catalogPool = new Semaphore(1_000_000);
  readonly #blockingSlots: number;
  readonly #failing = new Map<object, BackendError>();
  #degraded = false;
  #synced = false;
  #dirty = false;
  /**
   * serviceKey → the served Service now (undefined: no longer served) for every key changed since the last
   * snapshot: applied to #served and passed on as the store's `changed` hint.
   */
  readonly #pending = new Map<string, Service | undefined>();
  /** What the last snapshot served; each snapshot is an O(changes) update of the previous one (shared structure). */
  #served: SnapshotMap<Service> = SnapshotMap.empty();
  #emitScheduled = false;
  /** When the first reply with a change not yet emitted returned (receiptClock): propagation, issue 14 #4. */
  #receivedAt: number | null = null;
  #startedAt = 0;
  readonly #warned = new Set<string>();
  #stopped = false;
  /** Index sweeps started (for tests and the bench). */
  sweeps = 0;
  /** Services the hint watch poked (for tests): one per changed service-level check, every service on a node for a node-level one. */
  hintPokes = 0;
  /** Services poked because their node's address changed (the nodes watch; for tests). */
  nodePokes = 0;

  constructor(cfg: ConsulBackendConfig, ctx: BackendContext, opts: ConsulBackendOptions = {}) {
    this.name = cfg.name ?? 'consul';
    this.#cfg = cfg;
    this.#ctx = ctx;
    this.#log = ctx.logger;
    this.#now = opts.now ?? (() => performance.now());
    this.#random = opts.random ?? Math.random;
    // Per datacenter a socket each for the catalog, hint and nodes watches is kept out of the shared budget
    // (CONTROL_SOCKETS); the rest is split between non-blocking fetches and blocking service watches.
    this.#blockingSlots = Math.max(1, cfg.maxConnections - cfg.fetchConcurrency - CONTROL_SOCKETS * (1 + cfg.datacenters.length));
    this.#pools = {
      fetch: new Semaphore(cfg.fetchConcurrency),
      blocking: new Semaphore(this.#blockingSlots),
      waitSeconds: () => this.#waitSeconds(),
    };
    this.#registerMetrics(ctx);
  }

  /** Per-datacenter time (this.#now, ms) of the catalog watch's last completed request. */
  readonly #catalogReplyMs = new Map<string, number>();

  /** The handlers every service watch reports to (one object, not three closures per watch). */
  readonly #hooks: WatchHooks = {
    health: (dc, name, w, reply) => this.#onHealth(dc, name, w, reply),
    ok: (key) => this.#ok(key),
    fail: (key, err) => this.#fail(key, err),
  };
  /** Loop options by kind for the current HTTP client: service watches share one object, catalog and hint watches another. */
  #loopOpts: { readonly http: ConsulHttp; readonly service: LoopOptions; readonly control: LoopOptions } | null = null;
  readonly #healthQueries = new Map<Datacenter, Readonly<Record<string, string | undefined>>>();

  #loopOptions(http: ConsulHttp, kind: 'service' | 'control'): LoopOptions {
    if (this.#loopOpts?.http !== http) {
      const common = { http, requestTimeoutMs: this.#cfg.requestTimeoutMs, minIntervalMs: this.#cfg.minWatchIntervalMs, now: this.#now, random: this.#random };
      this.#loopOpts = {
        http,
        service: { ...common, pools: this.#pools },
        // Catalog and hint loops never queue behind the service watches.
        control: { ...common, pools: { fetch: this.#catalogPool, blocking: this.#catalogPool, waitSeconds: () => this.#cfg.waitSeconds } },
      };
    }
    return this.#loopOpts[kind];
  }

  /** Scrape-time gauges over the watch loops (BackendContext.metrics; nothing on any request path). */
  #registerMetrics(ctx: BackendContext): void {
    const m = ctx.metrics;
    if (m === undefined) return;
    const watches = () => {
      let n = 0;
      for (const dc of this.#dcs.values()) n += dc.watches.size;
      return n;
    };
    m.gauge('consul_blocking_slots', 'Blocking-query connections the Consul backend may hold (maxConnections minus the fetch pool and the catalog, hint and nodes watches).', () => this.#blockingSlots);
    m.gauge('consul_blocking_slots_in_use', 'Blocking-query connections the Consul backend holds now.', () => this.#blockingSlots - this.#pools.blocking.free);
    m.gauge('consul_watches', 'Per-service health watches the Consul backend runs (one per service in the catalog, per datacenter).', watches);
    m.gauge('consul_watches_queued', 'Service watches waiting for a blocking slot (more watches than slots: each waits its turn, change hints let it skip the queue).', () => this.#pools.blocking.waiting);
    m.gauge('consul_catalog_last_reply_age_seconds', 'Seconds since the catalog watch last completed a request (its index confirmed or advanced), oldest over datacenters; a blocking query returns at least every waitSeconds, so a much larger age means the watch is stuck.', () => {
      if (this.#catalogReplyMs.size === 0) return null;
      const now = this.#now();
      let age = 0;
      for (const t of this.#catalogReplyMs.values()) age = Math.max(age, (now - t) / 1000);
      return age;
    });
  }

  ownsScope(scope: string | null): boolean {
    return claimOwns(this.scopeClaim(), scope);
  }

  /** Until /v1/agent/self names the agent's datacenter, any scope could be it: SERVFAIL rather than NXDOMAIN (§5.4). */
  scopeClaim(): ScopeClaim {
    const scopes = [...this.#cfg.datacenters];
    if (this.#cfg.datacenter !== undefined) scopes.push(this.#cfg.datacenter);
    if (this.#agentScope !== null) scopes.push(this.#agentScope);
    return { unscoped: true, any: this.#cfg.datacenter === undefined && this.#agentScope === null, scopes };
  }

  start(sink: BackendSink): void {
    if (this.#sink) return;
    this.#sink = sink;
    this.#startedAt = this.#now();
    void this.#boot().catch((e: unknown) => {
      // Nothing in boot is expected to throw past its own handling; never let it become an unhandled rejection.
      if (!this.#stopped) this.#log.error({ err: e }, 'consul backend failed to start');
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abort.abort();
    for (const dc of this.#dcs.values()) {
      dc.catalog.stop();
      dc.hint?.stop();
      dc.nodesWatch?.stop();
      for (const w of dc.watches.values()) w.loop.stop();
    }
    this.#http?.destroy();
  }

  /** Loop counts, for tests. */
  get stats(): { datacenters: number; watches: number; blockingSlots: number; zeroIndexRequests: number; hints: number; nodeWatches: number } {
    let watches = 0;
    let zero = 0;
    for (const dc of this.#dcs.values()) {
      watches += dc.watches.size;
      zero += dc.catalog.zeroIndexRequests;
      for (const w of dc.watches.values()) zero += w.loop.zeroIndexRequests;
    }
    let hints = 0;
    let nodeWatches = 0;
    for (const dc of this.#dcs.values()) {
      if (dc.hint) hints++;
      if (dc.nodesWatch) nodeWatches++;
    }
    return { datacenters: this.#dcs.size, watches, blockingSlots: this.#blockingSlots, zeroIndexRequests: zero, hints, nodeWatches };
  }

  // ---- boot: access, agent datacenter, watches ----

  async #boot(): Promise<void> {
    const signal = this.#abort.signal;
    const backoff = new Backoff({ random: this.#random });
    const bootKey = {};
    while (!signal.aborted) {
      try {
        const access = await resolveAccess(this.#cfg, this.#ctx.env, this.#ctx.configDir);
        if (signal.aborted) return; // stop() while reading files: start nothing
        this.#http?.destroy();
        this.#http = new ConsulHttp(access, { maxConnections: this.#cfg.maxConnections, consistency: this.#cfg.consistency });
        let agentDc: string | undefined = this.#cfg.datacenter;
        const dcParam = agentDc;
        if (agentDc === undefined) {
          const r = await this.#http.get('/v1/agent/self', { timeoutMs: this.#cfg.requestTimeoutMs, signal });
          const cfg = (r.body as { Config?: { Datacenter?: unknown } } | null)?.Config;
          const dc = typeof cfg?.Datacenter === 'string' ? cfg.Datacenter.toLowerCase() : '';
          if (!isLabel(dc)) {
            throw new BackendError('SVCDNS_BACKEND_BAD_DATA', 'Consul /v1/agent/self has no usable Config.Datacenter; set `datacenter`', {
              endpoint: '/v1/agent/self',
            });
          }
          agentDc = dc;
        }
        this.#agentScope = agentDc;
        this.#ok(bootKey);
        this.#addDatacenter(agentDc, dcParam);
        for (const dc of this.#cfg.datacenters) if (!this.#dcs.has(dc)) this.#addDatacenter(dc, dc);
        return;
      } catch (e) {
        if (e instanceof AbortedError || signal.aborted) return;
        await this.#fail(bootKey, toBackendError(e));
        if (!(await sleep(backoff.next(), signal))) return;
      }
    }
  }

  #addDatacenter(scope: string, dcParam: string | undefined): void {
    if (this.#stopped) return;
    const http = this.#http!;
    const query = { dc: dcParam };
    const dc: Datacenter = {
      scope,
      dcParam,
      catalogSynced: false,
      catalogGen: 0,
      watches: new Map(),
      nodeServices: new Map(),
      hint: null,
      hintChecks: new HintChecks(),
      nodesWatch: null,
      nodeAddrs: null,
      sweeping: false,
      sweepAgain: false,
      catalog: new BlockingLoop(this.#loopOptions(http, 'control'), '/v1/catalog/services', query, {
        onData: (r) => this.#onCatalog(dc, r),
        onOk: () => {
          this.#catalogReplyMs.set(scope, this.#now());
          this.#ok(dc.catalog);
        },
        onError: (e) => this.#fail(dc.catalog, e),
      }),
    };
    this.#dcs.set(scope, dc);
    dc.catalog.start();
  }

  /** Wait (s) of a service's blocking query: the full wait while every watch has its own slot; shorter when
   * more watches than slots share them, so each still comes round about once per waitSeconds. */
  #waitSeconds(): number {
    let watches = 0;
    for (const dc of this.#dcs.values()) watches += dc.watches.size;
    if (watches <= this.#blockingSlots) return this.#cfg.waitSeconds;
    return Math.max(1, Math.floor((this.#cfg.waitSeconds * this.#blockingSlots) / watches));
  }

  // ---- data ----

  #onCatalog(dc: Datacenter, reply: ConsulReply): void {
    const body = reply.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new BackendError('SVCDNS_BACKEND_BAD_DATA', 'Consul /v1/catalog/services did not answer an object', {
        endpoint: '/v1/catalog/services',
        dc: dc.scope,
      });
    }
    if (reply.filteredByAcl) {
      this.#warnOnce(`acl-filtered/${dc.scope}`, 'Consul filtered /v1/catalog/services by ACL: the token cannot see every service (needs service:read)', {
        dc: dc.scope,
        tokenSource: this.#http?.tokenSource,
      });
    }
    const gen = ++dc.catalogGen;
    for (const consulName in body) {
      const name = consulName.toLowerCase();
      if (!isLabel(name)) {
        this.#warnOnce(`name/${dc.scope}/${consulName}`, `Consul service "${consulName}" is not a DNS label; not served`, {
          service: consulName,
          dc: dc.scope,
        });
        continue;
      }
      const w = dc.watches.get(name);
      if (w !== undefined && w.listed === gen) {
        this.#warnOnce(`dup/${dc.scope}/${consulName}`, `Consul service "${consulName}" differs from another only by case; not served`, {
          service: consulName,
          dc: dc.scope,
        });
        continue;
      }
      if (w !== undefined) w.listed = gen;
      else this.#startServiceWatch(dc, name, consulName, gen);
    }
    for (const [name, w] of dc.watches) {
      if (w.listed === gen) continue;
      w.loop.stop();
      dc.watches.delete(name);
      this.#setNodes(dc, name, w, []);
      this.#failing.delete(w.loop);
      if (w.service !== null) {
        this.#pending.set(serviceKey(dc.scope, name), undefined);
        this.#receivedAt ??= reply.receivedAtMs ?? null;
      }
      this.#dirty = true;
    }
    const wasSynced = dc.catalogSynced;
    dc.catalogSynced = true;
    this.#updateHints();
    // Every registration, deregistration and port or address change moves the catalog index; a watch waiting
    // its turn for a blocking slot would see it only when its turn comes (~watches/slots × wait). Find the
    // services whose own index moved with cheap probes, and read those at once.
    if (wasSynced) this.#requestSweep(dc);
    this.#dirty = true;
    this.#scheduleEmit();
    this.#maybeRecovered();
  }

  #startServiceWatch(dc: Datacenter, name: string, consulName: string, listed: number): void {
    if (this.#stopped) return;
    // onlyPassing: Consul drops instances with any non-passing check itself (smaller replies); translate applies
    // the same rule again, so the result does not depend on the server honouring it. One query object per
    // datacenter, shared by its watches.
    let query = this.#healthQueries.get(dc);
    if (query === undefined) this.#healthQueries.set(dc, (query = { dc: dc.dcParam, passing: this.#cfg.onlyPassing ? '' : undefined }));
    const w = new ServiceWatch(dc, name, consulName, listed, this.#hooks, this.#loopOptions(this.#http!, 'service'), query);
    dc.watches.set(name, w);
    w.loop.start();
  }

  #onHealth(dc: Datacenter, name: string, w: ServiceWatch, reply: ConsulReply): void {
    if (w.loop.stopped) return;
    const endpoint = `/v1/health/service/${w.consulName}`;
    if (!Array.isArray(reply.body)) {
      throw new BackendError('SVCDNS_BACKEND_BAD_DATA', `Consul ${endpoint} did not answer an array`, { endpoint, dc: dc.scope });
    }
    const t = translateHealth(reply.body, {
      name,
      scope: dc.scope,
      onlyPassing: this.#cfg.onlyPassing,
      ttlSeconds: this.#cfg.ttlSeconds,
      warn: (key, msg, details) => this.#warnOnce(key, msg, details),
    });
    if (t.malformed > 0) {
      this.#warnOnce(`malformed/${dc.scope}/${name}`, `Consul ${endpoint}: ${t.malformed} entries without Node/Service skipped`, { endpoint });
    }
    this.#setNodes(dc, name, w, t.nodes);
    // Same served data: keep the object (the store diffs by identity).
    if (w.service !== null && sameServed(w.service, t.instances, this.#cfg.ttlSeconds, t.knownTags, t.unhealthy)) return;
    // An exact-size copy: the translated array was pushed to (room for 17); this one is what the store serves.
    w.service = makeService(name, dc.scope, t.instances.slice(), this.#cfg.ttlSeconds, t.knownTags, t.unhealthy, w.service);
    this.#pending.set(serviceKey(dc.scope, name), w.service);
    this.#receivedAt ??= reply.receivedAtMs ?? null;
    this.#dirty = true;
    this.#scheduleEmit();
  }

  #setNodes(dc: Datacenter, name: string, w: ServiceWatch, nodes: string[]): void {
    if (nodes.length === w.nodes.length && nodes.every((n, i) => n === w.nodes[i])) return;
    for (const n of w.nodes) {
      const list = dc.nodeServices.get(n);
      const i = list?.indexOf(name) ?? -1;
      if (i >= 0) list!.splice(i, 1);
      if (list?.length === 0) dc.nodeServices.delete(n);
    }
    for (const n of nodes) {
      const list = dc.nodeServices.get(n);
      if (!list) dc.nodeServices.set(n, [name]);
      else if (!list.includes(name)) list.push(name);
    }
    w.nodes = nodes.slice(); // exact size: it stays for the life of the watch
  }

  // ---- hints: when watches outnumber blocking slots, most of them wait their turn for a slot; a blocking watch
  // on the checks that are not passing (small: healthy checks are filtered out by Consul) says which services'
  // health changed, and those read at once instead of waiting. Registrations, deregistrations and changed ports or
  // service addresses move the catalog index (the index sweep finds them); a node's changed address moves neither,
  // so a watch on the node list pokes the services on a node whose address changed.

  #updateHints(): void {
    if (this.#stopped) return;
    let watches = 0;
    for (const dc of this.#dcs.values()) watches += dc.watches.size;
    const want = watches > this.#blockingSlots;
    for (const dc of this.#dcs.values()) {
      if (want && dc.hint === null) {
        const hint: BlockingLoop = new BlockingLoop(this.#loopOptions(this.#http!, 'control'), '/v1/health/state/any', { dc: dc.dcParam, filter: 'Status != "passing"' }, {
          rawBody: true, // every check not passing: ~560 KB at 1,500 of them, parsed only where it changed (hint-checks.ts)
          onData: (r) => this.#onHint(dc, r),
          onOk: () => {},
          // Hints only speed things up: their failure is logged, never turns the backend stale.
          onError: (e) =>
            this.#warnOnce(`hint/${dc.scope}/${e.code}`, 'consul health-state hint watch failing; changes wait for their turn', {
              code: e.code,
              details: e.details,
            }),
        });
        dc.hint = hint;
        hint.start();
        const nodes: BlockingLoop = new BlockingLoop(this.#loopOptions(this.#http!, 'control'), '/v1/catalog/nodes', { dc: dc.dcParam }, {
          onData: (r) => this.#onNodes(dc, r),
          onOk: () => {},
          onError: (e) =>
            this.#warnOnce(`nodes/${dc.scope}/${e.code}`, 'consul node-list watch failing; a node address change waits for its services\' turn', {
              code: e.code,
              details: e.details,
            }),
        });
        dc.nodesWatch = nodes;
        nodes.start();
      } else if (!want && dc.hint !== null) {
        dc.hint.stop();
        dc.hint = null;
        dc.hintChecks = new HintChecks(); // a next hint watch starts from a baseline again; the old texts go
        dc.nodesWatch?.stop();
        dc.nodesWatch = null;
        dc.nodeAddrs = null;
      }
    }
  }

  #onHint(dc: Datacenter, reply: ConsulReply): void {
    const endpoint = '/v1/health/state/any';
    // A check that appears, disappears or changes status pokes its service, or every service on its node.
    let isArray = false;
    try {
      isArray = Buffer.isBuffer(reply.body) && dc.hintChecks.apply(reply.body, (node, svc) => this.#pokeHinted(dc, node, svc));
    } catch (e) {
      throw new BackendError('SVCDNS_BACKEND_BAD_DATA', `Consul ${endpoint} answered invalid JSON`, { endpoint }, e);
    }
    if (!isArray) throw new BackendError('SVCDNS_BACKEND_BAD_DATA', `Consul ${endpoint} did not answer an array`, { endpoint });
  }

  /**
   * A reply of the node list: the services on every node whose address (or lan_ipv4/lan_ipv6 tagged address,
   * what translate.ts reads of a node) changed are poked. The first reply is the baseline. A node that left the
   * list loses its services through the catalog watch; a new node has none yet.
   */
  #onNodes(dc: Datacenter, reply: ConsulReply): void {
    const body = reply.body;
    if (!Array.isArray(body)) {
      throw new BackendError('SVCDNS_BACKEND_BAD_DATA', 'Consul /v1/catalog/nodes did not answer an array', { endpoint: '/v1/catalog/nodes', dc: dc.scope });
    }
    const before = dc.nodeAddrs;
    const now = new Map<string, string>();
    for (const n of body as unknown[]) {
      const key = nodeAddressKey(n);
      if (key === null) continue;
      const node = (n as { Node: string }).Node;
      now.set(node, key);
      const had = before?.get(node);
      if (had !== undefined && had !== key) this.nodePokes += this.#poke(dc, dc.nodeServices.get(node) ?? []);
    }
    dc.nodeAddrs = now;
  }

  /** Read these services of `dc` at once (BlockingLoop.poke); returns how many have a watch. */
  #poke(dc: Datacenter, names: readonly string[]): number {
    let n = 0;
    for (const name of names) {
      const w = dc.watches.get(name);
      if (w === undefined) continue;
      n++;
      w.loop.poke();
    }
    return n;
  }

  /** A hinted check changed: read its service now, or every service on its node for a node-level check. */
  #pokeHinted(dc: Datacenter, node: string, svc: string): void {
    this.hintPokes += this.#poke(dc, svc !== '' ? [svc.toLowerCase()] : dc.nodeServices.get(node) ?? []);
  }

  // ---- index sweep: Consul has no endpoint listing each service's index, but a probe of one service with a filter
  // that matches nothing answers `[]` (a few bytes) with that service's X-Consul-Index. After the catalog index
  // moves, every watch that is not holding a blocking query (those Consul wakes itself) is probed through the
  // fetch pool, and a watch whose index moved reads at once (poke). Sweeps coalesce: moves during a sweep cause
  // one more sweep after it, so a change waits at most about two sweeps, whatever the number of blocking slots.

  #requestSweep(dc: Datacenter): void {
    let watches = 0;
    for (const d of this.#dcs.values()) watches += d.watches.size;
    if (watches <= this.#blockingSlots || this.#stopped) return; // every watch holds its own blocking query
    dc.sweepAgain = true;
    if (dc.sweeping) return;
    dc.sweeping = true;
    void this.#sweep(dc)
      .catch((e: unknown) => {
        if (!this.#stopped) this.#warnOnce(`sweep/${dc.scope}`, 'consul index sweep failed', { err: String(e) });
      })
      .finally(() => {
        dc.sweeping = false;
      });
  }

  async #sweep(dc: Datacenter): Promise<void> {
    const signal = this.#abort.signal;
    const http = this.#http!;
    const { fetch, blocking } = this.#pools;
    // Probes are latency-bound (a few hundred bytes each): besides the fetch pool, a sweep borrows blocking
    // slots as the rotating watches hand them back (each holds one for ~1 s at 10,000 services), ahead of the
    // queue, and returns them when the round ends. All but 1/8 of the slots, which keep the rotation going
    // (10,000 probes: 4.8 s at 16 in flight, 2.0–4.6 s at 64, 1.3–2.8 s at 112 on a busy 2-vCPU machine).
    const borrowed = this.#blockingSlots - Math.ceil(this.#blockingSlots / 8);
    while (dc.sweepAgain && !signal.aborted) {
      dc.sweepAgain = false;
      this.sweeps++;
      const t0 = this.#now();
      const watches = [...dc.watches.values()];
      let next = 0;
      let probes = 0;
      let moved = 0;
      const round = new AbortController();
      const queueSignal = AbortSignal.any([signal, round.signal]);
      const worker = async (acquire: (s: AbortSignal) => Promise<(() => void) | null>): Promise<void> => {
        while (next < watches.length && !signal.aborted) {
          const release = await acquire(queueSignal);
          if (release === null) return;
          let w: ServiceWatch | undefined;
          while (next < watches.length) {
            const c = watches[next++]!;
            if (!c.loop.stopped && !c.loop.holdingBlocking && c.loop.index > 1) {
              w = c;
              break;
            }
          }
          if (w === undefined) {
            release();
            round.abort(); // nothing left: wake the workers still queued for a slot
            return;
          }
          try {
            if (w.loop.stopped || w.loop.holdingBlocking) continue;
            const held = w.loop.index;
            const r = await http.get(`/v1/health/service/${encodeURIComponent(w.consulName)}`, {
              query: { dc: dc.dcParam, filter: INDEX_PROBE_FILTER },
              timeoutMs: this.#cfg.requestTimeoutMs,
              signal,
            });
            probes++;
            // Compared with the loop's index now: a read that finished meanwhile may still predate the change.
            if (r.index !== null && r.index > held && r.index > w.loop.index) {
              moved++;
              w.loop.poke();
            }
          } catch (e) {
            if (e instanceof AbortedError || signal.aborted) return;
            // A failed probe only loses the shortcut: the watch still comes round in its turn.
          } finally {
            release();
          }
        }
      };
      const workers: Promise<void>[] = [];
      for (let i = 0; i < this.#cfg.fetchConcurrency; i++) workers.push(worker((q) => fetch.acquire(q)));
      for (let i = 0; i < borrowed; i++) workers.push(worker((q) => blocking.acquireFirst(q)));
      await Promise.all(workers);
      round.abort();
      this.#log.debug({ dc: dc.scope, watches: watches.length, probes, moved, ms: Math.round(this.#now() - t0) }, 'consul index sweep');
    }
  }

  #allSynced(): boolean {
    if (this.#dcs.size === 0) return false;
    const expected = 1 + this.#cfg.datacenters.filter((d) => d !== this.#agentScope).length;
    if (this.#dcs.size < expected) return false;
    for (const dc of this.#dcs.values()) {
      if (!dc.catalogSynced) return false;
      for (const w of dc.watches.values()) if (w.service === null) return false;
    }
    return true;
  }

  #scheduleEmit(): void {
    if (this.#emitScheduled || this.#stopped) return;
    this.#emitScheduled = true;
    // Coalesce the changes of one I/O turn (e.g. a catalog reply that removes 100 services) into one snapshot.
    setImmediate(() => {
      this.#emitScheduled = false;
      this.#emit();
    });
  }

  #emit(): void {
    if (this.#stopped || !this.#sink || !this.#dirty) return;
    if (!this.#synced && !this.#allSynced()) return;
    this.#dirty = false;
    let changed: ReadonlySet<string> | undefined;
    if (this.#synced) {
      // After the first snapshot: an O(changes) update of the previous map, and only those keys for the store.
      this.#served = this.#served.with(this.#pending);
      changed = new Set(this.#pending.keys());
    } else {
      const all = new Map<string, Service>();
      let instances = 0;
      for (const dc of this.#dcs.values()) {
        for (const [name, w] of dc.watches) {
          if (w.service === null) continue;
          all.set(serviceKey(dc.scope, name), w.service);
          instances += w.service.instances.length;
        }
      }
      this.#served = SnapshotMap.empty<Service>().with(all);
      this.#synced = true;
      this.#log.debug(
        { services: all.size, instances, datacenters: [...this.#dcs.keys()], syncMs: Math.round(this.#now() - this.#startedAt) },
        'consul backend synced',
      );
    }
    this.#pending.clear();
    const services = this.#served;
    const receivedAt = this.#receivedAt ?? undefined;
    this.#receivedAt = null;
    this.#sink.snapshot({ services, defaultScope: this.#agentScope, changed }, receivedAt);
    // A snapshot marks the backend synced in the store; while some watch still fails it is stale (§6.3).
    const failing = this.#failing.values().next();
    if (!failing.done) this.#sink.error(failing.value);
  }

  // ---- failure and recovery ----

  async #fail(key: object, err: BackendError): Promise<void> {
    if (this.#stopped) return;
    this.#failing.set(key, err);
    this.#sink?.error(err);
    if (!this.#degraded) {
      this.#degraded = true;
      // The supervisor logs the state change (syncing/synced → stale) once at error level; this is detail.
      this.#log.debug(
        { code: err.code, details: err.details, err: err.message },
        this.#synced ? 'consul unavailable: serving the last known healthy set (stale)' : 'consul unavailable: not ready (SERVFAIL)',
      );
    }
    if (err.code === 'SVCDNS_BACKEND_FORBIDDEN') await this.#rereadToken();
  }

  #ok(key: object): void {
    if (!this.#failing.delete(key)) return;
    this.#maybeRecovered();
  }

  #maybeRecovered(): void {
    if (!this.#degraded || this.#failing.size > 0) return;
    this.#degraded = false;
    this.#log.debug({ synced: this.#synced }, 'consul reachable again');
    // Re-emit even when nothing changed: the snapshot is what clears the stale mark in the store.
    this.#dirty = true;
    this.#scheduleEmit();
  }

  /** A rotated token file is picked up after a 403 without a restart. */
  async #rereadToken(): Promise<void> {
    const http = this.#http;
    if (!http) return;
    const file =
      this.#cfg.token === undefined
        ? this.#cfg.tokenFile ?? (this.#ctx.env['CONSUL_HTTP_TOKEN'] ? undefined : this.#ctx.env['CONSUL_HTTP_TOKEN_FILE'])
        : undefined;
    if (file === undefined) return;
    try {
      const token = (await readFile(resolve(this.#ctx.configDir, file), 'utf8')).trim();
      http.setToken(token === '' ? null : token, http.tokenSource);
    } catch {
      // Keep the old token; the 403 already says which source it came from.
    }
  }

  #warnOnce(key: string, msg: string, details: Record<string, unknown>): void {
    if (this.#warned.has(key)) return;
    if (this.#warned.size >= MAX_WARNED_KEYS) this.#warned.clear();
    this.#warned.add(key);
    this.#log.warn(details, msg);
  }
}

function toBackendError(e: unknown): BackendError {
  if (e instanceof BackendError) return e;
  return new BackendError('SVCDNS_BACKEND_BAD_DATA', `consul backend: ${(e as Error)?.message ?? String(e)}`, {}, e);
}

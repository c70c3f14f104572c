// test/fakes/consul-fake: a Consul HTTP agent for tests — a real HTTP server on 127.0.0.1:0 with a mutable
// catalog per datacenter, serving /v1/agent/self, /v1/catalog/services and /v1/health/service/<name> in the
// shapes of recorded real replies (node-level serfHealth with empty ServiceID, Tags: null, hostnames as
// Service.Address), with X-Consul-Index on every reply, blocking queries (index + wait), ?passing/?stale/?dc,
// ACL tokens (403), and failures on demand (HTTP 500, dropped connections, hanging requests, index going back).

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

export type CheckStatus = 'passing' | 'warning' | 'critical' | 'maintenance';

export interface FakeNodeSpec {
  readonly name: string;
  readonly address: string;
  readonly dc?: string;
  /** Node.TaggedAddresses, strings (`lan`, `lan_ipv4`, `lan_ipv6`, `wan`...). Default: lan/wan = address. */
  readonly taggedAddresses?: Record<string, string>;
}

export interface FakeServiceSpec {
  readonly id: string;
  readonly service: string;
  readonly node: string;
  readonly dc?: string;
  /** null reproduces the real `"Tags": null`. */
  readonly tags?: string[] | null;
  readonly address?: string;
  readonly port?: number;
  readonly weights?: { Passing: number; Warning: number };
  /** Service.TaggedAddresses: `{ lan_ipv6: { address, port } }`. */
  readonly taggedAddresses?: Record<string, { address: string; port: number }>;
  /** Service-level checks; default one passing check `service:<id>`. */
  readonly checks?: { id?: string; status: CheckStatus }[];
}

interface Check {
  Node: string;
  CheckID: string;
  Name: string;
  Status: CheckStatus;
  Notes: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: string[];
  Type: string;
  Definition: Record<string, never>;
  CreateIndex: number;
  ModifyIndex: number;
}

interface NodeRec {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  TaggedAddresses: Record<string, string>;
  Meta: Record<string, string>;
  CreateIndex: number;
  ModifyIndex: number;
  checks: Check[];
}

interface ServiceRec {
  node: string;
  Service: Record<string, unknown> & { ID: string; Service: string; Tags: string[] | null };
  checks: Check[];
}

interface Dc {
  nodes: Map<string, NodeRec>;
  /** Service ID → record (IDs are unique per node in Consul; unique per dc here, which tests respect). */
  services: Map<string, ServiceRec>;
  /** Index of the services table (catalog/services). */
  catalogIndex: number;
  /** Service name → its own modify index (Consul keeps `service.<name>` index entries). */
  serviceIndex: Map<string, number>;
  /** Index of the checks table (/v1/health/state/*). */
  checksIndex: number;
  /** Index of the nodes table (/v1/catalog/nodes): node registrations and changes, not their checks. */
  nodesIndex: number;
  /** Service name → its IDs in `services` order, so /v1/health/service/<name> does not scan a 100k-instance catalog. */
  byName: Map<string, Set<string>>;
}

interface Waiter {
  key: string;
  /** `key` split once (dc, kind, name): #wake compares every waiter's index at every change. */
  parts: readonly [string, string, string];
  index: number;
  fire: () => void;
}

export interface RequestRecord {
  readonly path: string;
  readonly query: URLSearchParams;
  readonly token: string | null;
  readonly at: number;
}

type Failure = { kind: 'status'; status: number; body: string; match?: RegExp } | { kind: 'drop'; match?: RegExp };

export interface ConsulFakeOptions {
  readonly datacenter?: string;
  /** Other known datacenters (?dc=). */
  readonly datacenters?: string[];
  /** Register the `consul` service on a server node, as every real catalog has. Default true. */
  readonly withConsulService?: boolean;
  /** Serve HTTPS (PEM key/cert); with `ca` + `requireClientCert`, clients must present a certificate it signed. */
  readonly tls?: { key: Buffer | string; cert: Buffer | string; ca?: Buffer | string; requireClientCert?: boolean };
  /**
   * An agent started with `-dev`: every reply indented. Default false: like a production agent, compact JSON unless
   * the request asks `?pretty` (Consul's agent/http.go marshalJSON).
   */
  readonly devMode?: boolean;
}

function parseWait(s: string | null): number {
  if (!s) return 300_000; // Consul default 5 min
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) return 300_000;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const ms = unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000;
  return Math.min(ms, 600_000); // Consul caps wait at 10 minutes
}

const flag = (q: URLSearchParams, k: string) => q.has(k) && !/^(0|false)$/i.test(q.get(k) ?? '');

export class ConsulFake {
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #dcs = new Map<string, Dc>();
  readonly #datacenter: string;
  #index = 10;
  readonly #devMode: boolean;
  #waiters = new Set<Waiter>();
  #failures: Failure[] = [];
  #hang = false;
  /** Inside restartWith(): mutations wake nobody. */
  #quiet = false;
  #hung = new Set<http.ServerResponse>();
  #token: string | null = null;
  #port = 0;
  /** Every request seen, in order (tests inspect index/wait/stale/dc/token usage). */
  readonly requests: RequestRecord[] = [];
  #recordRequests = true;
  /** Currently open TCP connections and the peak (bounded-concurrency checks). */
  openConnections = 0;
  peakConnections = 0;
  /** Blocking requests currently held open. */
  get held(): number {
    return this.#waiters.size;
  }

  private constructor(opts: ConsulFakeOptions) {
    this.#datacenter = opts.datacenter ?? 'dc1';
    this.#devMode = opts.devMode === true;
    for (const dc of [this.#datacenter, ...(opts.datacenters ?? [])]) {
      this.#dcs.set(dc, { nodes: new Map(), services: new Map(), catalogIndex: 1, serviceIndex: new Map(), checksIndex: 1, nodesIndex: 1, byName: new Map() });
    }
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.#handle(req, res);
    this.#server = opts.tls
      ? (https.createServer(
          {
            key: opts.tls.key,
            cert: opts.tls.cert,
            ...(opts.tls.ca ? { ca: opts.tls.ca } : {}),
            requestCert: opts.tls.requireClientCert === true,
            rejectUnauthorized: opts.tls.requireClientCert === true,
          },
          handler,
        ) as unknown as http.Server)
      : http.createServer(handler);
    this.#server.keepAliveTimeout = 120_000;
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      this.openConnections++;
      this.peakConnections = Math.max(this.peakConnections, this.openConnections);
      s.on('close', () => {
        this.#sockets.delete(s);
        this.openConnections--;
      });
    });
    if (opts.withConsulService !== false) {
      for (const dc of this.#dcs.keys()) {
        const server = `consul-server-${dc}`;
        this.addNode({ name: server, address: '127.0.0.1', dc });
        this.register({ id: 'consul', service: 'consul', node: server, dc, tags: [], port: 8300, checks: [] });
      }
    }
  }

  static async start(opts: ConsulFakeOptions = {}, port = 0): Promise<ConsulFake> {
    const f = new ConsulFake(opts);
    await f.listen(port);
    return f;
  }

  get port(): number {
    return this.#port;
  }

  /** `127.0.0.1:<port>` as `address` / CONSUL_HTTP_ADDR takes it. */
  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  listen(port = this.#port): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => {
        this.#server.off('error', reject);
        this.#port = (this.#server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /** Stop listening and cut every connection (a Consul outage: connection refused until listen()). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      for (const w of this.#waiters) this.#waiters.delete(w);
      this.#server.close(() => resolve());
      for (const s of this.#sockets) s.destroy();
      this.#hung.clear();
    });
  }

  // ---- catalog mutation (each write bumps the raft index and wakes blocked queries) ----

  #dc(dc: string | undefined): Dc {
    const d = this.#dcs.get(dc ?? this.#datacenter);
    if (!d) throw new Error(`fake: unknown dc ${dc}`);
    return d;
  }

  #check(node: string, id: string, name: string, status: CheckStatus, svc: ServiceRec['Service'] | null): Check {
    return {
      Node: node,
      CheckID: id,
      Name: name,
      Status: status,
      Notes: '',
      Output: status === 'passing' ? 'Agent alive and reachable' : '',
      ServiceID: svc ? svc.ID : '',
      ServiceName: svc ? svc.Service : '',
      ServiceTags: svc ? (svc.Tags ?? []) : [],
      Type: svc ? 'http' : '',
      Definition: {},
      CreateIndex: this.#index,
      ModifyIndex: this.#index,
    };
  }

  addNode(spec: FakeNodeSpec): void {
    const d = this.#dc(spec.dc);
    const idx = ++this.#index;
    const dcName = spec.dc ?? this.#datacenter;
    const rec: NodeRec = {
      ID: `00000000-0000-4000-8000-${String(d.nodes.size + 1).padStart(12, '0')}`,
      Node: spec.name,
      Address: spec.address,
      Datacenter: dcName,
      TaggedAddresses: spec.taggedAddresses ?? { lan: spec.address, wan: spec.address },
      Meta: { 'consul-network-segment': '' },
      CreateIndex: idx,
      ModifyIndex: idx,
      checks: [],
    };
    rec.checks.push(this.#check(spec.name, 'serfHealth', 'Serf Health Status', 'passing', null));
    d.nodes.set(spec.name, rec);
    d.nodesIndex = idx;
    this.#touchNode(d, spec.name);
  }

  /**
   * A node re-registered with another address (a VM or agent Pod back with a new IP under its old name). As in
   * Consul's catalogInsertNode: the nodes table's index and the index of every service on the node move (node data
   * is part of each health reply), the services table's and the checks table's do not.
   */
  setNodeAddress(name: string, address: string, opts: { dc?: string; taggedAddresses?: Record<string, string> } = {}): void {
    const d = this.#dc(opts.dc);
    const n = d.nodes.get(name);
    if (!n) throw new Error(`fake: unknown node ${name}`);
    const idx = ++this.#index;
    n.Address = address;
    n.TaggedAddresses = opts.taggedAddresses ?? { lan: address, wan: address };
    n.ModifyIndex = idx;
    d.nodesIndex = idx;
    for (const s of d.services.values()) if (s.node === name) d.serviceIndex.set(s.Service.Service, idx);
    this.#wake();
  }

  register(spec: FakeServiceSpec): void {
    const d = this.#dc(spec.dc);
    if (!d.nodes.has(spec.node)) throw new Error(`fake: unknown node ${spec.node}`);
    const idx = ++this.#index;
    const old = d.services.get(spec.id);
    const svc: ServiceRec['Service'] = {
      ID: spec.id,
      Service: spec.service,
      Tags: spec.tags === undefined ? [] : spec.tags,
      Address: spec.address ?? '',
      Meta: null,
      Port: spec.port ?? 0,
      Weights: spec.weights ?? { Passing: 1, Warning: 1 },
      EnableTagOverride: false,
      Proxy: {},
      Connect: {},
      CreateIndex: old ? (old.Service['CreateIndex'] as number) : idx,
      ModifyIndex: idx,
    };
    if (spec.taggedAddresses) svc['TaggedAddresses'] = spec.taggedAddresses;
    const checks = (spec.checks ?? [{ status: 'passing' as const }]).map((c, i) =>
      this.#check(spec.node, c.id ?? (i === 0 ? `service:${spec.id}` : `service:${spec.id}:${i + 1}`), `Service '${spec.service}' check`, c.status, svc),
    );
    d.services.set(spec.id, { node: spec.node, Service: svc, checks });
    if (!old) {
      let ids = d.byName.get(spec.service);
      if (!ids) d.byName.set(spec.service, (ids = new Set()));
      ids.add(spec.id);
    } else if (old.Service.Service !== spec.service) {
      this.#unindex(d, old.Service.Service, spec.id);
      // The ID keeps its place in `services`: rebuild the new name's list in that order.
      const ids = new Set<string>();
      for (const [id, r] of d.services) if (r.Service.Service === spec.service) ids.add(id);
      d.byName.set(spec.service, ids);
    }
    if (old && old.Service.Service !== spec.service) d.serviceIndex.set(old.Service.Service, idx);
    d.serviceIndex.set(spec.service, idx);
    d.catalogIndex = idx;
    d.checksIndex = idx;
    this.#wake();
  }

  deregister(id: string, dc?: string): void {
    const d = this.#dc(dc);
    const rec = d.services.get(id);
    if (!rec) throw new Error(`fake: unknown service id ${id}`);
    const idx = ++this.#index;
    d.services.delete(id);
    this.#unindex(d, rec.Service.Service, id);
    d.serviceIndex.set(rec.Service.Service, idx);
    d.catalogIndex = idx;
    d.checksIndex = idx;
    this.#wake();
  }

  #unindex(d: Dc, name: string, id: string): void {
    const ids = d.byName.get(name);
    ids?.delete(id);
    if (ids?.size === 0) d.byName.delete(name);
  }

  /** Set a service-level check (by service ID; first check unless checkId given). */
  setCheck(serviceId: string, status: CheckStatus, opts: { dc?: string; checkId?: string } = {}): void {
    const d = this.#dc(opts.dc);
    const rec = d.services.get(serviceId);
    if (!rec) throw new Error(`fake: unknown service id ${serviceId}`);
    const c = opts.checkId ? rec.checks.find((x) => x.CheckID === opts.checkId) : rec.checks[0];
    if (!c) throw new Error(`fake: no check on ${serviceId}`);
    const idx = ++this.#index;
    c.Status = status;
    c.ModifyIndex = idx;
    d.serviceIndex.set(rec.Service.Service, idx);
    d.checksIndex = idx;
    this.#wake();
  }

  /** Node-level serfHealth (ServiceID ""), which counts for every service on the node. */
  setNodeHealth(node: string, status: CheckStatus, dc?: string): void {
    const d = this.#dc(dc);
    const n = d.nodes.get(node);
    if (!n) throw new Error(`fake: unknown node ${node}`);
    const idx = ++this.#index;
    n.checks[0]!.Status = status;
    n.checks[0]!.ModifyIndex = idx;
    this.#touchNode(d, node);
  }

  #touchNode(d: Dc, node: string): void {
    d.checksIndex = this.#index;
    for (const s of d.services.values()) if (s.node === node) d.serviceIndex.set(s.Service.Service, this.#index);
    this.#wake();
  }

  /** An idempotent write: the service's index grows, its data does not ("no guarantee of a change"). */
  bumpIndex(service: string, dc?: string): void {
    const d = this.#dc(dc);
    d.serviceIndex.set(service, ++this.#index);
    this.#wake();
  }

  /** Snapshot restore: every index drops to `n` (< current). Blocked queries keep waiting, as on a real agent. */
  setIndex(n: number): void {
    this.#index = n;
    for (const d of this.#dcs.values()) {
      d.catalogIndex = Math.min(d.catalogIndex, n);
      d.checksIndex = Math.min(d.checksIndex, n);
      d.nodesIndex = Math.min(d.nodesIndex, n);
      for (const k of d.serviceIndex.keys()) d.serviceIndex.set(k, Math.min(d.serviceIndex.get(k)!, n));
    }
  }

  /**
   * Every index becomes exactly `n`, up or down, and nothing wakes: with a second fake on the same port, an agent
   * restarted with other data that happens to answer the very X-Consul-Index the client holds (issue 10 #13).
   */
  forceIndex(n: number): void {
    this.#index = n;
    for (const d of this.#dcs.values()) {
      d.catalogIndex = n;
      d.checksIndex = n;
      d.nodesIndex = n;
      for (const k of d.serviceIndex.keys()) d.serviceIndex.set(k, n);
    }
  }

  /**
   * An agent restart that takes no time: every connection is cut (held blocking queries get no reply), the data
   * becomes what `seed` registers on an empty catalog, and every index is `index`. Nothing wakes on the way.
   * `cutConnections: false` keeps the connections: held queries then return at their wait with the new data and
   * the same index (a "no change" to a client that trusts the index).
   */
  restartWith(index: number, seed: (f: ConsulFake) => void, opts: { cutConnections?: boolean } = {}): void {
    if (opts.cutConnections !== false) this.dropConnections();
    this.#quiet = true;
    try {
      for (const [name, d] of this.#dcs) {
        for (const id of [...d.services.keys()]) this.deregister(id, name);
        d.nodes.clear();
        d.serviceIndex.clear();
      }
      seed(this);
    } finally {
      this.#quiet = false;
    }
    this.forceIndex(index);
  }

  get raftIndex(): number {
    return this.#index;
  }

  // ---- failures on demand ----

  /** The next `n` requests (matching `match`, if given) get `status` (default 500). */
  failNext(n: number, status = 500, match?: RegExp): void {
    const body = status === 403 ? 'Permission denied' : 'rpc error making call: No cluster leader';
    for (let i = 0; i < n; i++) this.#failures.push(match ? { kind: 'status', status, body, match } : { kind: 'status', status, body });
  }

  /** The next `n` requests have their connection destroyed without a reply. */
  dropNext(n: number, match?: RegExp): void {
    for (let i = 0; i < n; i++) this.#failures.push(match ? { kind: 'drop', match } : { kind: 'drop' });
  }

  clearFailures(): void {
    this.#failures = [];
  }

  /** Destroy every open connection now (held blocking queries included). */
  dropConnections(): void {
    for (const w of this.#waiters) this.#waiters.delete(w);
    for (const s of this.#sockets) s.destroy();
    this.#hung.clear();
  }

  /** While on, requests are accepted and never answered (a hung agent). */
  setHang(on: boolean): void {
    this.#hang = on;
    if (!on) {
      for (const r of this.#hung) r.socket?.destroy();
      this.#hung.clear();
    }
  }

  /** Require this X-Consul-Token (null: ACLs off). */
  requireToken(token: string | null): void {
    this.#token = token;
  }

  set recordRequests(on: boolean) {
    this.#recordRequests = on;
  }

  // ---- HTTP ----

  #wake(): void {
    if (this.#quiet) return;
    // Deleting the entry being visited is safe in a Set iteration; fire() adds no waiter.
    for (const w of this.#waiters) {
      if (this.#indexOf(w.parts) > w.index) {
        this.#waiters.delete(w);
        w.fire();
      }
    }
  }

  #currentIndex(key: string): number {
    return this.#indexOf(key.split('\u0000') as [string, string, string]);
  }

  #indexOf([dcName, kind, name]: readonly [string, string, string]): number {
    const d = this.#dcs.get(dcName)!;
    if (kind === 'catalog') return Math.max(1, d.catalogIndex);
    if (kind === 'nodes') return Math.max(1, d.nodesIndex);
    if (kind === 'state') return Math.max(1, d.checksIndex);
    // A service never seen still has an index (Consul answers [] with the services table index).
    return Math.max(1, d.serviceIndex.get(name) ?? d.catalogIndex);
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const q = url.searchParams;
    const token = (req.headers['x-consul-token'] as string | undefined) ?? q.get('token');
    if (this.#recordRequests) this.requests.push({ path: url.pathname, query: q, token: token ?? null, at: performance.now() });

    const fi = this.#failures.findIndex((f) => !f.match || f.match.test(url.pathname));
    if (fi >= 0) {
      const f = this.#failures.splice(fi, 1)[0]!;
      if (f.kind === 'drop') {
        req.socket.destroy();
        return;
      }
      res.writeHead(f.status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(f.body);
      return;
    }
    if (this.#hang) {
      this.#hung.add(res);
      return;
    }
    if (this.#token !== null && token !== this.#token) {
      res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('ACL not found');
      return;
    }
    // Consul indents when the query has `pretty` at all (any value), or always in dev mode.
    const pretty = this.#devMode || q.has('pretty');
    const dcName = q.get('dc') ?? this.#datacenter;
    if (!this.#dcs.has(dcName)) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('No path to datacenter');
      return;
    }
    let key: string;
    if (url.pathname === '/v1/agent/self') {
      this.#json(res, 200, this.#index, {
        Config: { Datacenter: this.#datacenter, NodeName: `consul-server-${this.#datacenter}`, Server: true, Version: '1.16.4' },
        Member: { Name: `consul-server-${this.#datacenter}`, Addr: '127.0.0.1', Port: 8301, Status: 1 },
      }, {}, pretty);
      return;
    } else if (url.pathname === '/v1/catalog/services') {
      key = `${dcName}\u0000catalog\u0000`;
    } else if (url.pathname === '/v1/catalog/nodes') {
      key = `${dcName}\u0000nodes\u0000`;
    } else if (/^\/v1\/health\/state\/(any|passing|warning|critical)$/.test(url.pathname)) {
      key = `${dcName}\u0000state\u0000${url.pathname.slice('/v1/health/state/'.length)}`;
      const filter = q.get('filter');
      if (filter !== null && !/^Status\s*(==|!=)\s*"(passing|warning|critical|maintenance)"$/.test(filter.trim())) {
        res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`Failed to create boolean expression evaluator: unsupported by the fake: ${filter}`);
        return;
      }
    } else if (url.pathname.startsWith('/v1/health/service/')) {
      key = `${dcName}\u0000health\u0000${decodeURIComponent(url.pathname.slice('/v1/health/service/'.length))}`;
      // Consul filters after the (blocking) query resolved: X-Consul-Index stays the service's own index.
      const filter = q.get('filter');
      if (filter !== null && !/^Service\.ID\s*==\s*"[^"]*"$/.test(filter.trim())) {
        res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`Failed to create boolean expression evaluator: unsupported by the fake: ${filter}`);
        return;
      }
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`Invalid URL path: not a recognized HTTP API endpoint`);
      return;
    }
    const reply = () => {
      if (res.writableEnded || res.destroyed) return;
      const idx = this.#currentIndex(key);
      const headers: Record<string, string> = {
        'X-Consul-Effective-Consistency': flag(q, 'stale') ? 'stale' : flag(q, 'consistent') ? 'consistent' : 'leader',
        'X-Consul-KnownLeader': 'true',
        'X-Consul-LastContact': '0',
        'X-Consul-Query-Backend': 'blocking-query',
      };
      if (key.includes('\u0000catalog\u0000')) this.#json(res, 200, idx, this.#catalog(dcName), headers, pretty);
      else if (key.includes('\u0000nodes\u0000')) this.#json(res, 200, idx, this.#nodes(dcName), headers, pretty);
      else if (key.includes('\u0000state\u0000')) {
        const checks = this.#state(dcName, key.split('\u0000')[2]!, q.get('filter'));
        // Compact replies join each check's cached JSON (the bench asks for 1,500 of them twice a second).
        if (pretty) this.#json(res, 200, idx, checks, headers, pretty);
        else this.#send(res, 200, idx, `[${checks.map((c) => this.#checkJson(c)).join(',')}]`, headers);
      }
      else this.#json(res, 200, idx, this.#health(dcName, key.split('\u0000')[2]!, flag(q, 'passing'), q.get('filter')), headers, pretty);
    };
    const want = Number(q.get('index') ?? '0');
    if (!(want > 0) || this.#currentIndex(key) > want) {
      reply();
      return;
    }
    // Blocking: hold until the resource's index passes `want` or `wait` expires (then the same/lower index).
    const waiter: Waiter = {
      key,
      parts: key.split('\u0000') as [string, string, string],
      index: want,
      fire: () => {
        clearTimeout(timer);
        reply();
      },
    };
    const timer = setTimeout(() => {
      this.#waiters.delete(waiter);
      reply();
    }, parseWait(q.get('wait')));
    this.#waiters.add(waiter);
    res.on('close', () => {
      clearTimeout(timer);
      this.#waiters.delete(waiter);
    });
  }

  /** A check's compact JSON, kept while it stays the same: every change of a check bumps its ModifyIndex. */
  readonly #checkTexts = new WeakMap<Check, { modifyIndex: number; status: string; text: string }>();

  #checkJson(c: Check): string {
    const had = this.#checkTexts.get(c);
    if (had && had.modifyIndex === c.ModifyIndex && had.status === c.Status) return had.text;
    const text = JSON.stringify(c);
    this.#checkTexts.set(c, { modifyIndex: c.ModifyIndex, status: c.Status, text });
    return text;
  }

  #json(res: http.ServerResponse, status: number, index: number, body: unknown, headers: Record<string, string> = {}, pretty = this.#devMode): void {
    this.#send(res, status, index, pretty ? `${JSON.stringify(body, null, 4)}\n` : JSON.stringify(body), headers);
  }

  #send(res: http.ServerResponse, status: number, index: number, text: string, headers: Record<string, string>): void {
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Vary': 'Accept-Encoding',
      'X-Consul-Default-Acl-Policy': this.#token === null ? 'allow' : 'deny',
      'X-Consul-Index': String(index),
      'Content-Length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  }

  #catalog(dcName: string): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const s of this.#dcs.get(dcName)!.services.values()) {
      const tags = (out[s.Service.Service] ??= []);
      for (const t of s.Service.Tags ?? []) if (!tags.includes(t)) tags.push(t);
    }
    return out;
  }

  /** /v1/catalog/nodes: every node as registered, without its checks (sorted by name, as Consul's index is). */
  #nodes(dcName: string): unknown[] {
    const out: unknown[] = [];
    for (const n of this.#dcs.get(dcName)!.nodes.values()) {
      const { checks: _checks, ...node } = n;
      out.push(node);
    }
    return out.sort((a, b) => ((a as NodeRec).Node < (b as NodeRec).Node ? -1 : 1));
  }

  #state(dcName: string, state: string, filter: string | null): Check[] {
    const d = this.#dcs.get(dcName)!;
    const m = filter ? /^Status\s*(==|!=)\s*"(\w+)"$/.exec(filter.trim()) : null;
    const out: Check[] = [];
    // One pass over the checks, no copy of all of them (the bench asks this of 100,000 checks at each change).
    const take = (c: Check) => {
      if ((state === 'any' || c.Status === state) && (!m || (m[1] === '==' ? c.Status === m[2] : c.Status !== m[2]))) out.push(c);
    };
    for (const n of d.nodes.values()) for (const c of n.checks) take(c);
    for (const s of d.services.values()) for (const c of s.checks) take(c);
    return out;
  }

  #health(dcName: string, name: string, passing: boolean, filter: string | null = null): unknown[] {
    const d = this.#dcs.get(dcName)!;
    const out: unknown[] = [];
    const onlyId = filter === null ? null : /"([^"]*)"/.exec(filter)![1]!;
    for (const id of d.byName.get(name) ?? []) {
      if (onlyId !== null && id !== onlyId) continue;
      const s = d.services.get(id)!;
      const n = d.nodes.get(s.node)!;
      const { checks: nodeChecks, ...node } = n;
      // Real replies list node checks (serfHealth, ServiceID "") alongside the instance's own checks.
      const checks = [...nodeChecks, ...s.checks];
      if (passing && checks.some((c) => c.Status !== 'passing')) continue;
      out.push({ Node: node, Service: s.Service, Checks: checks });
    }
    return out;
  }
}

// ---- child-process mode: `node consul-fake.ts` runs one fake driven over IPC, so a scale test can measure the
// server's memory without the fake's (test/integration/consul-scale). Messages: {id, op, ...} → {id, result}.

interface IpcRequest {
  id: number;
  op: 'seed' | 'setCheck' | 'register' | 'deregister' | 'addNode' | 'setNodeAddress' | 'stats' | 'close';
  services?: number;
  nodes?: number;
  /** Instances per service (default 1); with more than 1 each has its own Service.Address 10.<k>.<k>.<j+1>. */
  per?: number;
  serviceId?: string;
  status?: CheckStatus;
  spec?: FakeServiceSpec;
  node?: FakeNodeSpec;
}

async function childMain(): Promise<void> {
  const fake = await ConsulFake.start();
  fake.recordRequests = false;
  process.on('message', (m: IpcRequest) => {
    let result: unknown = null;
    if (m.op === 'seed') {
      const nodes = m.nodes ?? 50;
      for (let n = 0; n < nodes; n++) fake.addNode({ name: `node-${n}`, address: `10.${(n >> 8) & 255}.${n & 255}.1` });
      const per = m.per ?? 1;
      for (let i = 0; i < (m.services ?? 0); i++) {
        if (per === 1) {
          fake.register({ id: `svc-${i}-1`, service: `svc-${i}`, node: `node-${i % nodes}`, port: 20_000 + (i % 1000), tags: i % 2 ? ['odd'] : null });
          continue;
        }
        for (let j = 0; j < per; j++) {
          fake.register({
            id: `svc-${i}-${j + 1}`,
            service: `svc-${i}`,
            node: `node-${(i * per + j) % nodes}`,
            address: `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`,
            port: 8080,
            tags: ['http'],
          });
        }
      }
    } else if (m.op === 'setCheck') {
      fake.setCheck(m.serviceId!, m.status!);
    } else if (m.op === 'register') {
      fake.register(m.spec!);
    } else if (m.op === 'deregister') {
      fake.deregister(m.serviceId!);
    } else if (m.op === 'addNode') {
      fake.addNode(m.node!);
    } else if (m.op === 'setNodeAddress') {
      fake.setNodeAddress(m.node!.name, m.node!.address);
    } else if (m.op === 'stats') {
      result = { port: fake.port, peakConnections: fake.peakConnections, openConnections: fake.openConnections, held: fake.held };
    } else if (m.op === 'close') {
      void fake.close().then(() => process.exit(0));
    }
    process.send?.({ id: m.id, result });
  });
  process.send?.({ id: 0, result: { port: fake.port } });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) await childMain();

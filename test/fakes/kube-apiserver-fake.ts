// test/fakes/kube-apiserver-fake: an in-process Kubernetes API server for EndpointSlices and Endpoints that
// lists and watches the way the real one does (api-concepts.md): JSON lists with metadata.resourceVersion,
// chunked watch streams of one JSON event per line, resourceVersion/allowWatchBookmarks/labelSelector honoured,
// 410 Expired/Gone as HTTP status or as an in-stream ERROR, 401/403 Status bodies, and fault switches.
// It records every request as (group, resource, verb, namespace) so tests can check RBAC against real traffic.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { HANG_DEADLINE_MS } from '../helpers/deadline.ts';

export interface ResourceDef {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly kind: string;
}

export const RESOURCES: readonly ResourceDef[] = [
  { group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', kind: 'EndpointSlice' },
  { group: '', version: 'v1', resource: 'endpoints', kind: 'Endpoints' },
];

export interface RecordedRequest {
  readonly group: string;
  readonly resource: string;
  readonly verb: 'list' | 'watch';
  readonly namespace: string | null;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
}

/** Any object we store: kind + metadata at least. */
export interface KubeObject {
  kind?: string;
  apiVersion?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

interface HistoryEvent {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly resource: string;
  readonly object: KubeObject;
  readonly previous: KubeObject | undefined;
}

interface Watcher {
  readonly def: ResourceDef;
  readonly namespace: string | null;
  readonly selector: Selector;
  readonly bookmarks: boolean;
  readonly res: ServerResponse;
}

export type ExpiredForm = 'status' | 'event';

export interface FakeOptions {
  /** Bearer token required on every request (401 otherwise). */
  readonly token?: string;
  /** Serve HTTPS with this key/certificate (PEM), as a real API server does. */
  readonly tls?: { readonly key: string; readonly cert: string };
}

export class KubeApiServerFake {
  readonly requests: RecordedRequest[] = [];
  readonly #server: Server;
  readonly #token: string;
  readonly #tls: FakeOptions['tls'];
  readonly #objects = new Map<string, Map<string, KubeObject>>(); // resource → ns/name → object
  readonly #history: HistoryEvent[] = [];
  readonly #watchers = new Set<Watcher>();
  #rv = 1000;
  /** Watches from a resourceVersion below this get 410 (etcd compaction). */
  #compactedRv = 0;
  #expiredForm: ExpiredForm = 'status';
  #expiredReason: 'Expired' | 'Gone' = 'Expired';
  #forbidden = new Set<string>(); // `${resource}:${verb}`
  #port = 0;
  #uid = 0;
  /** LIST responses fully written so far. */
  listsAnswered = 0;
  /** Delay before answering a LIST (ms): lets tests look at what is served while a relist is in flight. */
  listDelayMs = 0;
  /** Answer the next N continued LIST pages with 410 Expired (an expired continue token). */
  expireContinues = 0;
  /** Consistent paged LISTs in progress: continue token → the items left and the list's resourceVersion. */
  readonly #pagedLists = new Map<string, { rest: Omit<KubeObject, 'kind' | 'apiVersion'>[]; rv: string }>();
  #continueSeq = 0;

  private constructor(opts: FakeOptions) {
    this.#token = opts.token ?? 'fake-token';
    this.#tls = opts.tls;
    const handler = (req: IncomingMessage, res: ServerResponse) => this.#handle(req, res);
    this.#server = opts.tls ? createTlsServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : createServer(handler);
    for (const r of RESOURCES) this.#objects.set(r.resource, new Map());
  }

  static async start(opts: FakeOptions = {}): Promise<KubeApiServerFake> {
    const f = new KubeApiServerFake(opts);
    await f.#listen(0);
    return f;
  }

  get port(): number { return this.#port; }
  get url(): string { return `${this.#tls ? 'https' : 'http'}://127.0.0.1:${this.#port}`; }
  get resourceVersion(): number { return this.#rv; }
  get openWatches(): number { return this.#watchers.size; }

  /** A kubeconfig (YAML) pointing at this fake, with a token user; `context` names its only context. */
  kubeconfig(opts: { context?: string; token?: string } = {}): string {
    const ctx = opts.context ?? 'fake';
    return [
      'apiVersion: v1', 'kind: Config', `current-context: ${ctx}`,
      'clusters:', `- name: fake-cluster`, `  cluster:`, `    server: ${this.url}`,
      // client-node refuses plain http unless told so; with TLS the fake's certificate is the CA.
      this.#tls
        ? `    certificate-authority-data: ${Buffer.from(this.#tls.cert).toString('base64')}`
        : `    insecure-skip-tls-verify: true`,
      'users:', `- name: fake-user`, `  user:`, `    token: ${opts.token ?? this.#token}`,
      'contexts:', `- name: ${ctx}`, `  context:`, `    cluster: fake-cluster`, `    user: fake-user`, '',
    ].join('\n');
  }

  // ---- objects ----

  /** Create or replace an object (kind decides the resource); emits ADDED/MODIFIED. Returns the event's write time. */
  apply(input: KubeObject): { rv: number; writtenAt: number } {
    const def = defForKind(input.kind);
    const store = this.#objects.get(def.resource)!;
    const key = `${input.metadata.namespace ?? ''}/${input.metadata.name}`;
    const previous = store.get(key);
    const rv = ++this.#rv;
    const object: KubeObject = structuredClone(input);
    object.apiVersion = def.group === '' ? def.version : `${def.group}/${def.version}`;
    object.metadata = {
      ...object.metadata,
      uid: (previous?.metadata.uid as string | undefined) ?? `00000000-0000-4000-8000-${String(++this.#uid).padStart(12, '0')}`,
      resourceVersion: String(rv),
      creationTimestamp: (previous?.metadata.creationTimestamp as string | undefined) ?? '2026-01-01T00:00:00Z',
    };
    store.set(key, object);
    return { rv, writtenAt: this.#emit({ rv, type: previous ? 'MODIFIED' : 'ADDED', resource: def.resource, object, previous }) };
  }

  delete(kind: string, namespace: string, name: string): { rv: number; writtenAt: number } {
    const def = defForKind(kind);
    const store = this.#objects.get(def.resource)!;
    const key = `${namespace}/${name}`;
    const previous = store.get(key);
    if (!previous) throw new Error(`no ${kind} ${key}`);
    store.delete(key);
    const rv = ++this.#rv;
    const object = { ...structuredClone(previous), metadata: { ...previous.metadata, resourceVersion: String(rv) } };
    return { rv, writtenAt: this.#emit({ rv, type: 'DELETED', resource: def.resource, object, previous }) };
  }

  /** Change objects without telling open watches (as if the client missed them while disconnected). */
  applySilently(input: KubeObject): void {
    const watchers = [...this.#watchers];
    this.#watchers.clear();
    try { this.apply(input); } finally { for (const w of watchers) this.#watchers.add(w); }
  }

  deleteSilently(kind: string, namespace: string, name: string): void {
    const watchers = [...this.#watchers];
    this.#watchers.clear();
    try { this.delete(kind, namespace, name); } finally { for (const w of watchers) this.#watchers.add(w); }
  }

  // ---- faults ----

  /** Answer 403 to `verb` on `resource` (until allowed again). */
  forbid(resource: string, verb: 'list' | 'watch'): void { this.#forbidden.add(`${resource}:${verb}`); }
  allow(resource: string, verb: 'list' | 'watch'): void { this.#forbidden.delete(`${resource}:${verb}`); }

  /**
   * Compact history like etcd: every resourceVersion seen so far becomes too old. Open watches are closed so
   * clients come back with their old resourceVersion and get 410 in `form`: HTTP status, or 200 + ERROR event.
   */
  expire(form: ExpiredForm, reason: 'Expired' | 'Gone' = 'Expired'): void {
    this.#expiredForm = form;
    this.#expiredReason = reason;
    this.#rv++;
    this.#compactedRv = this.#rv;
    this.#history.length = 0;
    this.closeWatches();
  }

  /** Send the in-stream ERROR 410 on every open watch right now, then end it (the other real shape). */
  expireInStream(reason: 'Expired' | 'Gone' = 'Gone'): void {
    this.#rv++;
    this.#compactedRv = this.#rv;
    this.#history.length = 0;
    this.#expiredForm = 'event';
    this.#expiredReason = reason;
    for (const w of [...this.#watchers]) {
      w.res.write(`${JSON.stringify({ type: 'ERROR', object: this.#expiredStatus(this.#compactedRv - 1) })}\n`);
      this.#endWatch(w);
    }
  }

  /** Write one raw event line to every open watch (e.g. the etcd2-era ERROR without `code`), then end them. */
  writeAndClose(line: string): void {
    for (const w of [...this.#watchers]) { w.res.write(`${line}\n`); this.#endWatch(w); }
  }

  /** End every open watch stream cleanly (the API server's watch timeout). */
  closeWatches(): void {
    for (const w of [...this.#watchers]) this.#endWatch(w);
  }

  /** Send a BOOKMARK at the current resourceVersion to watches that asked for them. Returns how many got one. */
  bookmark(): number {
    let n = 0;
    for (const w of this.#watchers) {
      if (!w.bookmarks) continue;
      const object = { kind: w.def.kind, apiVersion: apiVersionOf(w.def), metadata: { resourceVersion: String(this.#rv) } };
      w.res.write(`${JSON.stringify({ type: 'BOOKMARK', object })}\n`);
      n++;
    }
    return n;
  }

  /** Stop accepting connections and cut every open one (API server gone). */
  async down(): Promise<void> {
    for (const w of [...this.#watchers]) { this.#watchers.delete(w); w.res.destroy(); }
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Listen again on the same port, same data and history (API server back). */
  async up(): Promise<void> {
    await this.#listen(this.#port);
  }

  async stop(): Promise<void> {
    if (this.#server.listening) await this.down();
  }

  /** Poll until `cond` holds (tests use it to wait for watchers/requests). */
  async waitFor(cond: () => boolean, what: string, timeoutMs = HANG_DEADLINE_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  count(verb: 'list' | 'watch', resource?: string, status?: number): number {
    return this.requests.filter((r) => r.verb === verb && (resource === undefined || r.resource === resource) && (status === undefined || r.status === status)).length;
  }

  // ---- HTTP ----

  #listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => {
        this.#server.off('error', reject);
        this.#port = (this.#server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const route = parsePath(url.pathname);
    const query = Object.fromEntries(url.searchParams);
    if (!route || req.method !== 'GET') {
      return sendStatus(res, 404, 'NotFound', `the server could not find the requested resource`);
    }
    const watch = query.watch === 'true' || query.watch === '1';
    const verb = watch ? 'watch' : 'list';
    const record = (status: number) =>
      this.requests.push({ group: route.def.group, resource: route.def.resource, verb, namespace: route.namespace, query, status });
    if (req.headers.authorization !== `Bearer ${this.#token}`) {
      record(401);
      return sendStatus(res, 401, 'Unauthorized', 'Unauthorized');
    }
    if (this.#forbidden.has(`${route.def.resource}:${verb}`)) {
      record(403);
      const where = route.namespace === null ? 'at the cluster scope' : `in the namespace "${route.namespace}"`;
      const grp = route.def.group === '' ? '""' : `"${route.def.group}"`;
      const full = route.def.group === '' ? route.def.resource : `${route.def.resource}.${route.def.group}`;
      return sendStatus(res, 403, 'Forbidden',
        `${full} is forbidden: User "system:serviceaccount:svcdns:svcdns" cannot ${verb} resource "${route.def.resource}" in API group ${grp} ${where}`,
        { group: route.def.group, kind: route.def.resource });
    }
    let selector: Selector;
    try {
      selector = parseSelector(query.labelSelector ?? '');
    } catch (err) {
      record(400);
      return sendStatus(res, 400, 'BadRequest', `unable to parse requirement: ${(err as Error).message}`);
    }
    if (!watch) {
      // Paging (api-concepts.md "Retrieving large results sets in chunks"): `limit` cuts the list, `continue`
      // resumes it at the same resourceVersion; an expired token is 410 Expired. Without `limit`: everything.
      let items: Omit<KubeObject, 'kind' | 'apiVersion'>[];
      let listRv = String(this.#rv);
      if (query.continue !== undefined) {
        const paged = this.#pagedLists.get(query.continue);
        this.#pagedLists.delete(query.continue);
        if (!paged || this.expireContinues > 0) {
          if (paged) this.expireContinues--;
          record(410);
          return sendStatus(res, 410, 'Expired', 'The provided continue parameter is too old to display a consistent list result.');
        }
        items = paged.rest;
        listRv = paged.rv;
      } else {
        items = [...this.#objects.get(route.def.resource)!.values()]
          .filter((o) => inNamespace(o, route.namespace) && selector(o.metadata.labels ?? {}))
          .map(({ kind: _k, apiVersion: _a, ...rest }) => rest); // list items carry no kind/apiVersion (stored objects are never mutated)
      }
      record(200);
      const limit = Number(query.limit ?? 0);
      const metadata: Record<string, string> = { resourceVersion: listRv };
      if (limit > 0 && items.length > limit) {
        const token = `page-${++this.#continueSeq}`;
        this.#pagedLists.set(token, { rest: items.slice(limit), rv: listRv });
        items = items.slice(0, limit);
        metadata.continue = token;
      }
      const body = JSON.stringify({ kind: `${route.def.kind}List`, apiVersion: apiVersionOf(route.def), metadata, items });
      const send = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body, () => { this.listsAnswered++; });
      };
      if (this.listDelayMs > 0) setTimeout(send, this.listDelayMs); else send();
      return;
    }
    const rvText = query.resourceVersion ?? '';
    const rv = rvText === '' ? 0 : Number(rvText);
    if (rvText !== '' && rvText !== '0' && rv < this.#compactedRv) {
      if (this.#expiredForm === 'status') {
        record(410);
        const s = this.#expiredStatus(rv);
        res.writeHead(410, { 'content-type': 'application/json' });
        res.end(JSON.stringify(s));
        return;
      }
      record(200);
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.end(`${JSON.stringify({ type: 'ERROR', object: this.#expiredStatus(rv) })}\n`);
      return;
    }
    record(200);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = { def: route.def, namespace: route.namespace, selector, bookmarks: query.allowWatchBookmarks === 'true', res };
    this.#watchers.add(w);
    res.on('close', () => this.#watchers.delete(w));
    if (rvText === '' || rvText === '0') {
      // "Get State and Start at Most Recent": synthetic ADDED for everything, then live events.
      for (const o of this.#objects.get(route.def.resource)!.values()) {
        if (inNamespace(o, w.namespace) && selector(o.metadata.labels ?? {})) res.write(`${JSON.stringify({ type: 'ADDED', object: o })}\n`);
      }
    } else {
      for (const ev of this.#history) if (ev.rv > rv && ev.resource === route.def.resource) this.#deliver(w, ev);
    }
  }

  #expiredStatus(rv: number): Record<string, unknown> {
    return {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
      message: `too old resource version: ${rv} (${this.#compactedRv})`, reason: this.#expiredReason, code: 410,
    };
  }

  #endWatch(w: Watcher): void {
    this.#watchers.delete(w);
    w.res.end();
  }

  /** Record the event and write it to matching watches; returns performance.now() at the write. */
  #emit(ev: HistoryEvent): number {
    this.#history.push(ev);
    const t = performance.now();
    for (const w of this.#watchers) if (w.def.resource === ev.resource) this.#deliver(w, ev);
    return t;
  }

  /** Selector-aware delivery: an object leaving the selector is DELETED for that watch, entering is ADDED. */
  #deliver(w: Watcher, ev: HistoryEvent): void {
    if (!inNamespace(ev.object, w.namespace)) return;
    const now = w.selector(ev.object.metadata.labels ?? {});
    const before = ev.previous !== undefined && w.selector(ev.previous.metadata.labels ?? {});
    let type: string = ev.type;
    if (ev.type === 'DELETED') { if (!before) return; }
    else if (now && !before) type = 'ADDED';
    else if (!now && before) type = 'DELETED';
    else if (!now) return;
    w.res.write(`${JSON.stringify({ type, object: ev.object })}\n`);
  }
}

function apiVersionOf(d: ResourceDef): string {
  return d.group === '' ? d.version : `${d.group}/${d.version}`;
}

function defForKind(kind: string | undefined): ResourceDef {
  const d = RESOURCES.find((r) => r.kind === kind);
  if (!d) throw new Error(`fake API server does not serve kind ${kind}`);
  return d;
}

function inNamespace(o: KubeObject, ns: string | null): boolean {
  return ns === null || o.metadata.namespace === ns;
}

function parsePath(path: string): { def: ResourceDef; namespace: string | null } | null {
  for (const def of RESOURCES) {
    const base = def.group === '' ? `/api/${def.version}` : `/apis/${def.group}/${def.version}`;
    if (path === `${base}/${def.resource}`) return { def, namespace: null };
    const m = new RegExp(`^${base.replace(/\./g, '\\.')}/namespaces/([a-z0-9-]+)/${def.resource}$`).exec(path);
    if (m) return { def, namespace: m[1]! };
  }
  return null;
}

function sendStatus(res: ServerResponse, code: number, reason: string, message: string, details?: Record<string, unknown>): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code }));
}

type Selector = (labels: Record<string, string>) => boolean;

/** Kubernetes label selector: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, comma = AND. */
export function parseSelector(text: string): Selector {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
  }
  if (cur.trim() !== '') parts.push(cur);
  const reqs: Selector[] = parts.map((raw) => {
    const p = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p))) {
      const [, k, op, vals] = m as unknown as [string, string, string, string];
      const set = new Set(vals.split(',').map((v) => v.trim()));
      return op === 'in' ? (l) => k in l && set.has(l[k]!) : (l) => !(k in l) || !set.has(l[k]!);
    }
    if ((m = /^([\w./-]+)\s*(!=|==|=)\s*([\w.-]*)$/.exec(p))) {
      const [, k, op, v] = m as unknown as [string, string, string, string];
      return op === '!=' ? (l) => l[k] !== v : (l) => l[k] === v;
    }
    if ((m = /^!\s*([\w./-]+)$/.exec(p))) { const k = m[1]!; return (l) => !(k in l); }
    if ((m = /^([\w./-]+)$/.exec(p))) { const k = m[1]!; return (l) => k in l; }
    throw new Error(`"${p}"`);
  });
  return (labels) => reqs.every((r) => r(labels));
}

// ---- object builders in the shapes of real objects (see ../shared/fixtures/kubernetes/) ----

export interface SliceEndpoint {
  readonly addresses: string[];
  /** Omitted → no `ready` key at all (the API's nil = ready). */
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
  readonly pod?: string;
}

export interface KPort { readonly name?: string; readonly port: number; readonly protocol?: 'TCP' | 'UDP' | 'SCTP' }

/** discovery.k8s.io/v1 EndpointSlice as the EndpointSlice controller writes it. */
export function endpointSlice(o: {
  namespace: string;
  name: string;
  service?: string;
  addressType?: 'IPv4' | 'IPv6' | 'FQDN';
  ports?: KPort[];
  endpoints?: SliceEndpoint[];
  labels?: Record<string, string>;
}): KubeObject {
  const labels: Record<string, string> = { ...o.labels, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' };
  if (o.service !== undefined) labels['kubernetes.io/service-name'] = o.service;
  return {
    kind: 'EndpointSlice',
    metadata: { name: o.name, namespace: o.namespace, labels, generateName: `${o.service ?? 'x'}-` },
    addressType: o.addressType ?? 'IPv4',
    endpoints: (o.endpoints ?? []).map((e, i) => ({
      addresses: e.addresses,
      conditions: {
        ...(e.ready === undefined ? {} : { ready: e.ready }),
        ...(e.serving === undefined ? {} : { serving: e.serving }),
        ...(e.terminating === undefined ? {} : { terminating: e.terminating }),
      },
      nodeName: 'node-1',
      targetRef: { kind: 'Pod', name: e.pod ?? `${o.service ?? 'pod'}-${i}`, namespace: o.namespace, uid: `pod-uid-${i}` },
      zone: 'zone-a',
    })),
    ports: (o.ports ?? []).map((p) => ({ ...(p.name === undefined ? { name: '' } : { name: p.name }), port: p.port, protocol: p.protocol ?? 'TCP' })),
  };
}

/** Legacy core/v1 Endpoints: subsets of ready `addresses`, `notReadyAddresses`, named ports. */
export function legacyEndpoints(o: {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  subsets: { addresses?: string[]; notReadyAddresses?: string[]; ports: KPort[] }[];
}): KubeObject {
  const addr = (ip: string, i: number) => ({ ip, nodeName: `node-${i}`, targetRef: { kind: 'Pod', name: `${o.name}-${i}`, namespace: o.namespace } });
  return {
    kind: 'Endpoints',
    metadata: { name: o.name, namespace: o.namespace, ...(o.labels ? { labels: o.labels } : {}) },
    subsets: o.subsets.map((s) => ({
      ...(s.addresses ? { addresses: s.addresses.map(addr) } : {}),
      ...(s.notReadyAddresses ? { notReadyAddresses: s.notReadyAddresses.map(addr) } : {}),
      ports: s.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, protocol: p.protocol ?? 'TCP' })),
    })),
  };
}

// ---- harness: the real backend against this fake, reporting into a recording sink ----

export interface SinkEvent {
  readonly kind: 'snapshot' | 'error';
  readonly at: number;
  readonly snapshot?: import('../../src/model/service.ts').ServiceSnapshot;
  readonly error?: import('../../src/backends/backend.ts').BackendError;
}

/** A BackendSink that keeps everything it is told, for assertions. */
export class RecordingSink {
  readonly events: SinkEvent[] = [];
  snapshot(snapshot: import('../../src/model/service.ts').ServiceSnapshot): void {
    this.events.push({ kind: 'snapshot', at: performance.now(), snapshot });
  }
  error(error: import('../../src/backends/backend.ts').BackendError): void {
    this.events.push({ kind: 'error', at: performance.now(), error });
  }
  get snapshots(): import('../../src/model/service.ts').ServiceSnapshot[] {
    return this.events.filter((e) => e.kind === 'snapshot').map((e) => e.snapshot!);
  }
  get errors(): import('../../src/backends/backend.ts').BackendError[] {
    return this.events.filter((e) => e.kind === 'error').map((e) => e.error!);
  }
  get last(): import('../../src/model/service.ts').ServiceSnapshot | undefined {
    return this.snapshots.at(-1);
  }
  /** Sorted "address:port/proto[name]" strings of one service in the latest snapshot; undefined if absent. */
  view(scope: string, name: string): string[] | undefined {
    const svc = this.last?.services.get(`${scope}/${name}`);
    if (!svc) return undefined;
    return svc.instances.flatMap((i) => i.ports.length === 0 ? [i.address] : i.ports.map((p) => `${i.address}:${p.port}/${p.protocol}${p.name ? `[${p.name}]` : ''}`)).sort();
  }
  addresses(scope: string, name: string): string[] | undefined {
    const svc = this.last?.services.get(`${scope}/${name}`);
    return svc ? svc.instances.map((i) => i.address).sort() : undefined;
  }
}

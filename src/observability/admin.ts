// observability/admin: the admin HTTP server (config `admin`) — /metrics (Prometheus text), /healthz (alive and
// listeners bound), /readyz (every backend synced at least once, and not in lameduck), /v1/services (the merged view, for debugging), /v1/status and the status page at / (issue 14 #3).
// Read-only, GET/HEAD only, bound to loopback by default: it exposes the whole registry content.

import http from 'node:http';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { serviceKey } from '../model/service.ts';
import type { MergedService, Store } from '../store/store.ts';
import type { Metrics } from './metrics.ts';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML, STATUS_PAGE_SCRIPT } from './status-page.ts';

export interface AdminOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Whether the DNS listeners are bound and not shutting down (/healthz). */
  readonly healthy: () => boolean;
  /**
   * True from the shutdown signal on (lameduck, `shutdown.lameDuckMs`): /readyz answers 503 at once so load
   * balancers stop sending traffic, while DNS keeps answering and /healthz stays 200 (CoreDNS `health { lameduck }`).
   */
  readonly draining?: () => boolean;
  /** Extra fields for /healthz (listen addresses, version...). */
  readonly info?: () => Record<string, unknown>;
  readonly now?: () => number;
}

/** Body of /readyz. Ready when every backend has synced at least once; a stale backend stays ready (§6.3). */
export interface Readiness {
  readonly ready: boolean;
  /** Shutting down (lameduck): not ready whatever the backends say. */
  readonly draining: boolean;
  /** Backends that have not completed their first sync. */
  readonly notSynced: readonly string[];
  /** Backends serving their last known data after a failure. */
  readonly stale: readonly string[];
  readonly backends: readonly {
    readonly name: string;
    readonly type: string;
    readonly state: string;
    readonly stale: boolean;
    readonly lastSyncAgeSeconds: number | null;
    readonly lastError: { readonly code: string; readonly message: string } | null;
    readonly services: number;
    readonly instances: number;
  }[];
}

export function readiness(store: Store, now: number, draining = false): Readiness {
  const backends = store.status().map((b) => ({
    name: b.name,
    type: b.type,
    state: b.state,
    stale: b.state === 'stale',
    lastSyncAgeSeconds: b.lastSyncMs === null ? null : Math.max(0, now - b.lastSyncMs) / 1000,
    lastError: b.lastError,
    services: b.services,
    instances: b.instances,
  }));
  const notSynced = backends.filter((b) => b.state === 'syncing').map((b) => b.name);
  return { ready: notSynced.length === 0 && !draining, draining, notSynced, stale: backends.filter((b) => b.stale).map((b) => b.name), backends };
}

/**
 * The merged view as JSON: every name the server answers, its scope, healthy instances, the registered instances
 * DNS does not serve and why (each backend's Service.unhealthy, §6.1), and source backends. Read from the main
 * thread's store, which keeps the unhealthy lists (workers' replicas do not get them).
 */
export function servicesView(store: Store): unknown {
  const services = [];
  for (const s of store.services()) {
    services.push({
      name: s.name,
      scope: s.scope,
      ttlSeconds: s.ttlSeconds ?? null,
      backends: s.backends,
      instances: s.instances.map((i) => ({
        address: i.address,
        family: i.family,
        ports: i.ports,
        weight: i.weight,
        tags: i.tags,
        name: i.name ?? null,
      })),
      unhealthy: unhealthyOf(store, s),
    });
  }
  return { generation: store.generation, serial: store.serial, backends: store.status(), services };
}

/** A merged name's unhealthy instances: those of each contributing backend's Service, in backend order. */
function unhealthyOf(store: Store, s: MergedService): { address: string; name: string | null; reason: string; backend: string }[] {
  const out: { address: string; name: string | null; reason: string; backend: string }[] = [];
  for (const backend of s.backends) {
    const snap = store.snapshotOf(backend);
    const scope = s.scope ?? snap?.defaultScope;
    if (!snap || scope == null) continue;
    for (const u of snap.services.get(serviceKey(scope, s.name))?.unhealthy ?? []) out.push({ address: u.address, name: u.name ?? null, reason: u.reason, backend });
  }
  return out;
}

/** Body of /v1/status (the status page): readiness with staleness, cache figures, end-to-end propagation. */
export function statusView(store: Store, metrics: Metrics, now: number, draining = false): unknown {
  const r = readiness(store, now, draining);
  const since = new Map(store.status().map((b) => [b.name, b.sinceMs]));
  const backends = r.backends.map((b) => ({ ...b, staleForSeconds: b.stale ? Math.max(0, now - (since.get(b.name) ?? now)) / 1000 : null }));
  return { nowMs: now, generation: store.generation, readiness: { ...r, backends }, cache: metrics.cacheFigures(), propagation: metrics.propagationSummary() };
}

export class AdminServer {
  readonly #o: AdminOptions;
  readonly #server: http.Server;
  #address: { host: string; port: number } | null = null;

  constructor(opts: AdminOptions) {
    this.#o = opts;
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        opts.logger.error({ event: 'admin_error', url: req.url, err: (err as Error).message }, 'admin request failed');
        if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
        else res.destroy();
      });
    });
    // Scrapers keep connections alive; do not let one hold shutdown open.
    this.#server.keepAliveTimeout = 5_000;
  }

  get address(): { host: string; port: number } | null {
    return this.#address;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.#o.host, port: this.#o.port, ipv6Only: isIPv6(this.#o.host), exclusive: true }, () => {
        this.#server.off('error', reject);
        this.#server.on('error', (err) => this.#o.logger.warn({ event: 'admin_socket_error', err: err.message }, 'admin socket error'));
        const a = this.#server.address();
        this.#address = { host: this.#o.host, port: typeof a === 'object' && a ? a.port : this.#o.port };
        resolve();
      });
    });
  }

  close(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    const now = (this.#o.now ?? Date.now)();
    switch (path) {
      case '/metrics': {
        const text = await this.#o.metrics.text();
        send(res, 200, this.#o.metrics.registry.contentType, text);
        return;
      }
      case '/healthz': {
        const ok = this.#o.healthy();
        sendJson(res, ok ? 200 : 503, { status: ok ? 'ok' : 'unavailable', ...(this.#o.info?.() ?? {}) });
        return;
      }
      case '/readyz': {
        const r = readiness(this.#o.store, now, this.#o.draining?.() ?? false);
        sendJson(res, r.ready ? 200 : 503, r);
        return;
      }
      case '/v1/services':
        sendJson(res, 200, servicesView(this.#o.store));
        return;
      case '/v1/status':
        sendJson(res, 200, statusView(this.#o.store, this.#o.metrics, now, this.#o.draining?.() ?? false));
        return;
      case '/':
        // The status page (issue 14 #3); its script is a separate file so the CSP can forbid inline script.
        res.setHeader('Content-Security-Policy', STATUS_PAGE_CSP);
        res.setHeader('X-Content-Type-Options', 'nosniff');
        send(res, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
        return;
      case '/status.js':
        res.setHeader('X-Content-Type-Options', 'nosniff');
        send(res, 200, 'text/javascript; charset=utf-8', STATUS_PAGE_SCRIPT);
        return;
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
  }
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body, null, 2)}\n`);
}

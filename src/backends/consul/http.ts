// backends/consul/http: one keep-alive HTTP(S) client for the Consul HTTP API — GET with token, consistency,
// index/wait, a hard deadline and abort; every failure mapped to a BackendError code.
//
// Why not the `consul` npm client: its Watch re-requests on process.nextTick after every reply (no rate limit, so
// a server that returns at once makes it busy-loop), resets a backwards index and re-requests at once, uses its
// own un-jittered backoff and has no hook for "stale"/"recovered" state; and a Watch per service means an
// EventEmitter + papi request chain per service with no bound on concurrent first fetches. What we need from it
// (a GET with X-Consul-Token, ?index/&wait/&stale/&dc and X-Consul-Index) is a few lines of node:http.

import http from 'node:http';
import https from 'node:https';
import type { Endpoint, ResolvedAccess, TokenSource } from './config.ts';
import { BackendError, receiptClock } from '../backend.ts';

export interface GetOptions {
  readonly query?: Readonly<Record<string, string | undefined>>;
  /** Hard bound for the whole exchange (headers and body), ms. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** Leave a 2xx body unparsed: `body` is its bytes (a Buffer), for a reply too large to parse in one piece. */
  readonly raw?: boolean;
}

export interface ConsulReply {
  /** X-Consul-Index, or null when absent/invalid. */
  readonly index: number | null;
  readonly body: unknown;
  /** X-Consul-Results-Filtered-By-ACLs: the token could not see everything (no 403 in that case). */
  readonly filteredByAcl: boolean;
  /**
   * The connection died under a blocking request and it was re-sent without `index`/`wait`: a fresh read, to be
   * applied whatever its index (the agent that answered may not be the one that gave us that index).
   */
  readonly reread: boolean;
  /** When the response's head arrived (receiptClock): a blocking query's return, for propagation (issue 14 #4). */
  readonly receivedAtMs?: number;
  /** The blocking query returned the index it was sent: nothing changed, and `body` (null) was not read. */
  readonly unchanged?: boolean;
}

/** Thrown (not a BackendError) when the caller aborted: not a failure of the source. */
export class AbortedError extends Error {
  constructor() {
    super('aborted');
    this.name = 'AbortedError';
  }
}

/** Internal: a reused keep-alive socket was reset before any reply (retried once). */
class StaleSocketError extends Error {}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

/** Bytes that form encoding leaves as they are (URLSearchParams: alphanumerics and `*-._`). */
const FORM_SAFE = /^[A-Za-z0-9*\-._]*$/;

/** One key or value as URLSearchParams writes it (application/x-www-form-urlencoded; space as `+`). */
function formEncode(s: string): string {
  if (FORM_SAFE.test(s)) return s; // index numbers, `60s`, service names: no copy
  return encodeURIComponent(s.toWellFormed()) // a lone surrogate becomes U+FFFD, as in URLSearchParams
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/**
 * The query string of a request: the consistency flag, then `query` in its order (undefined values left out), as
 * URLSearchParams writes it, except that an empty value is a bare flag (`?stale&passing`, as Consul's own clients
 * send them). Written by hand: a URLSearchParams, an entries array and a regex per request were a visible part of
 * the idle rotation's CPU at 10k services (~170 requests a second).
 */
export function queryString(flag: string | undefined, query: Readonly<Record<string, string | undefined>>): string {
  const pair = (k: string, v: string): string => (v === '' ? formEncode(k) : `${formEncode(k)}=${formEncode(v)}`);
  let flagValue = '';
  let rest = '';
  for (const k in query) {
    const v = query[k];
    if (v === undefined) continue;
    if (k === flag) flagValue = v; // set() on a key already there replaces it in its place
    else rest += `&${pair(k, v)}`;
  }
  return flag === undefined ? rest.slice(1) : pair(flag, flagValue) + rest;
}

export class ConsulHttp {
  readonly #endpoint: Endpoint;
  readonly #agent: http.Agent;
  readonly #consistency: 'stale' | 'default' | 'consistent';
  #token: string | null;
  #tokenSource: TokenSource;

  constructor(access: ResolvedAccess, opts: { maxConnections: number; consistency: 'stale' | 'default' | 'consistent' }) {
    this.#endpoint = access.endpoint;
    this.#token = access.token;
    this.#tokenSource = access.tokenSource;
    this.#consistency = opts.consistency;
    // Keep-alive: 5,000 watches reuse a bounded pool of sockets instead of a TCP handshake per long-poll.
    const agentOpts = { keepAlive: true, maxSockets: opts.maxConnections, maxFreeSockets: opts.maxConnections, scheduling: 'lifo' as const };
    this.#agent =
      access.endpoint.protocol === 'https:' ? new https.Agent({ ...agentOpts, ...(access.tls ?? {}) }) : new http.Agent(agentOpts);
  }

  get tokenSource(): TokenSource {
    return this.#tokenSource;
  }

  get baseUrl(): string {
    const h = this.#endpoint.host.includes(':') ? `[${this.#endpoint.host}]` : this.#endpoint.host;
    return `${this.#endpoint.protocol}//${h}:${this.#endpoint.port}`;
  }

  /** A token re-read from its file after a 403 (rotation). */
  setToken(token: string | null, source: TokenSource): void {
    this.#token = token;
    this.#tokenSource = source;
  }

  /** GET `path` (e.g. `/v1/catalog/services`). Adds the consistency flag; 2xx JSON → reply, else BackendError. */
  get(path: string, opts: GetOptions): Promise<ConsulReply> {
    const flag = this.#consistency === 'default' ? undefined : this.#consistency;
    const pathWith = (query: Readonly<Record<string, string | undefined>>) => {
      const qs = queryString(flag, query);
      return qs ? `${path}?${qs}` : path;
    };
    const query = opts.query ?? {};
    const endpoint = path; // what errors name: the endpoint, never the token
    // A keep-alive socket the agent closed while idle fails at once with ECONNRESET on reuse: that is not an
    // outage, so it is retried once on a fresh socket instead of marking the backend stale. The same reset also
    // ends a blocking query when the agent restarts, so the retry never blocks: without index and wait it is a
    // fresh read, which the caller applies (issue 10 #13: the restarted agent may hold other data at that index).
    // A blocking query that returns the index it was sent changed nothing (its wait expired): the watch ignores
    // the body then, so it is discarded unread. At 10k services the watches cycle through their blocking slots
    // about a hundred times a second, and parsing each unchanged body was most of the backend's idle CPU.
    const sentIndex = query['index'];
    return this.#attempt(pathWith(query), endpoint, opts, false, false, sentIndex).catch((e: unknown) => {
      if (!(e instanceof StaleSocketError)) throw e;
      const blocking = query['index'] !== undefined;
      const fresh = blocking ? pathWith({ ...query, index: undefined, wait: undefined }) : pathWith(query);
      return this.#attempt(fresh, endpoint, opts, true, blocking);
    });
  }

  #attempt(fullPath: string, endpoint: string, opts: GetOptions, retried: boolean, reread: boolean, sentIndex?: string): Promise<ConsulReply> {
    const mod = this.#endpoint.protocol === 'https:' ? https : http;
    return new Promise<ConsulReply>((resolvePromise, rejectPromise) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const headers: Record<string, string> = { accept: 'application/json' };
      if (this.#token !== null) headers['x-consul-token'] = this.#token;
      const req = mod.request({
        agent: this.#agent,
        host: this.#endpoint.host,
        port: this.#endpoint.port,
        method: 'GET',
        path: fullPath,
        headers,
      });
      const timer = setTimeout(() => {
        settle(() =>
          rejectPromise(
            new BackendError('SVCDNS_BACKEND_TIMEOUT', `Consul ${endpoint} did not answer within ${opts.timeoutMs} ms`, {
              endpoint,
              timeoutMs: opts.timeoutMs,
            }),
          ),
        );
        req.destroy();
      }, opts.timeoutMs);
      const onAbort = () => {
        settle(() => rejectPromise(new AbortedError()));
        req.destroy();
      };
      if (opts.signal?.aborted) {
        onAbort();
        return;
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });

      let gotResponse = false;
      req.on('error', (e: NodeJS.ErrnoException) => {
        settle(() => {
          const code = e.code ?? '';
          if (!retried && !gotResponse && req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) {
            rejectPromise(new StaleSocketError());
            return;
          }
          rejectPromise(
            new BackendError(
              'SVCDNS_BACKEND_UNREACHABLE',
              `Consul ${this.baseUrl}${endpoint}: ${e.message}`,
              { endpoint, address: this.baseUrl, errno: code || undefined, kind: UNREACHABLE_CODES.has(code) ? 'network' : 'tls-or-protocol' },
              e,
            ),
          );
        });
      });
      req.on('response', (res) => {
        gotResponse = true;
        const receivedAtMs = receiptClock();
        // A dropped connection fails the request in both branches below (never a silent wait for the timeout).
        res.on('error', (e) => {
          settle(() =>
            rejectPromise(new BackendError('SVCDNS_BACKEND_UNREACHABLE', `Consul ${endpoint}: ${e.message}`, { endpoint }, e)),
          );
        });
        res.on('aborted', () => {
          settle(() =>
            rejectPromise(new BackendError('SVCDNS_BACKEND_UNREACHABLE', `Consul ${endpoint}: connection dropped mid-response`, { endpoint })),
          );
        });
        if (sentIndex !== undefined && res.statusCode === 200 && res.headers['x-consul-index'] === sentIndex) {
          res.on('end', () => settle(() => resolvePromise({ index: Number(sentIndex), body: null, filteredByAcl: false, reread, receivedAtMs, unchanged: true })));
          res.resume();
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          settle(() => {
            const status = res.statusCode ?? 0;
            const bytes = Buffer.concat(chunks);
            const raw = opts.raw === true && status >= 200 && status <= 299 ? bytes : undefined;
            const text = raw === undefined ? bytes.toString('utf8') : '';
            if (status === 401 || status === 403) {
              rejectPromise(
                new BackendError(
                  'SVCDNS_BACKEND_FORBIDDEN',
                  `Consul refused ${endpoint} (HTTP ${status}: ${text.trim().slice(0, 120)}) with the token from ${this.#tokenSource}` +
                    ' — the token needs service:read and node:read (agent:read for /v1/agent/self)',
                  { endpoint, status, tokenSource: this.#tokenSource },
                ),
              );
              return;
            }
            if (status < 200 || status > 299) {
              rejectPromise(
                new BackendError('SVCDNS_BACKEND_HTTP', `Consul ${endpoint} answered HTTP ${status}: ${text.trim().slice(0, 200)}`, {
                  endpoint,
                  status,
                }),
              );
              return;
            }
            let body: unknown;
            try {
              body = raw ?? JSON.parse(text);
            } catch (e) {
              rejectPromise(new BackendError('SVCDNS_BACKEND_BAD_DATA', `Consul ${endpoint} answered invalid JSON`, { endpoint }, e));
              return;
            }
            const rawIndex = res.headers['x-consul-index'];
            const n = typeof rawIndex === 'string' && /^\d+$/.test(rawIndex) ? Number(rawIndex) : NaN;
            resolvePromise({
              index: Number.isSafeInteger(n) ? n : null,
              body,
              filteredByAcl: res.headers['x-consul-results-filtered-by-acls'] === 'true',
              reread,
              receivedAtMs,
            });
          });
        });
      });
      req.end();
    });
  }

  /** Close every socket (stop()). */
  destroy(): void {
    this.#agent.destroy();
  }
}

// backends/file/checks: active health checks of static-file instances (§6.1) — TCP connect or HTTP GET.
//
// Like Consul, a check starts `critical`-equivalent (`pending`): its instance is not served until a first
// passing result. The first probe runs at once and is bounded by timeoutMs; then one probe every intervalMs
// after the previous one ended (never overlapping, so a slow target cannot pile up sockets).

import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { CheckSpec } from './parse.ts';

export type CheckStatus = 'pending' | 'passing' | 'critical';

/** Stable identity of a check target + timing: two instances with the same spec share one prober. */
export function checkKey(spec: CheckSpec): string {
  const target = spec.kind === 'tcp' ? `tcp ${net.isIPv6(spec.host) ? `[${spec.host}]` : spec.host}:${spec.port}` : `http ${spec.url}`;
  return `${target} every ${spec.intervalMs}ms timeout ${spec.timeoutMs}ms`;
}

/**
 * One probe: resolves with null when passing, else a short reason. Never rejects; settles within timeoutMs,
 * or at once when `signal` aborts (stop() must not leave a socket or timer holding the process open).
 */
export function probe(spec: CheckSpec, signal?: AbortSignal): Promise<string | null> {
  return new Promise((resolve) => {
    let done = false;
    let cleanup: () => void = () => {};
    const finish = (reason: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      cleanup();
      resolve(reason);
    };
    const onAbort = () => finish('stopped');
    const timer = setTimeout(() => finish(`timed out after ${spec.timeoutMs} ms`), spec.timeoutMs);
    if (signal?.aborted) return finish('stopped');
    signal?.addEventListener('abort', onAbort);
    if (spec.kind === 'tcp') {
      const sock = net.connect({ host: spec.host, port: spec.port });
      cleanup = () => sock.destroy();
      sock.once('connect', () => finish(null));
      sock.on('error', (e: NodeJS.ErrnoException) => finish(`connect failed: ${e.code ?? e.message}`));
      return;
    }
    const mod = spec.url.startsWith('https:') ? https : http;
    // agent: false — one connection per probe, closed after it; a pooled socket would keep the process alive.
    const req = mod.get(spec.url, { agent: false, headers: { 'user-agent': 'svcdns-check' } }, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      // Consul: 2xx passing. We do not follow redirects, so a 3xx (the server is up and routing) passes too.
      finish(status >= 200 && status < 400 ? null : `HTTP ${status}`);
    });
    cleanup = () => req.destroy();
    req.on('error', (e: NodeJS.ErrnoException) => finish(`request failed: ${e.code ?? e.message}`));
  });
}

/** Runs one check spec periodically and reports status changes. */
export class Checker {
  readonly spec: CheckSpec;
  readonly key: string;
  #status: CheckStatus = 'pending';
  #reason: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  readonly #abort = new AbortController();
  readonly #onChange: (checker: Checker) => void;

  constructor(spec: CheckSpec, onChange: (checker: Checker) => void) {
    this.spec = spec;
    this.key = checkKey(spec);
    this.#onChange = onChange;
  }

  get status(): CheckStatus {
    return this.#status;
  }

  /** Why the last probe failed (null when passing or pending). */
  get reason(): string | null {
    return this.#reason;
  }

  start(): void {
    void this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#abort.abort();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #run(): Promise<void> {
    const reason = await probe(this.spec, this.#abort.signal);
    if (this.#stopped) return;
    const status: CheckStatus = reason === null ? 'passing' : 'critical';
    const changed = status !== this.#status;
    this.#status = status;
    this.#reason = reason;
    this.#timer = setTimeout(() => void this.#run(), this.spec.intervalMs);
    if (changed) this.#onChange(this);
  }
}

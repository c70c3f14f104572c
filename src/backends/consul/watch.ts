// backends/consul/watch: one Consul blocking-query loop (index + wait, the client rules of Consul's
// blocking.mdx: reset a backwards index, never send index 0 twice in a row, rate-limit the loop), plus the
// token bucket and the semaphore that bound how many loops talk to the agent at once.

import { BackendError } from '../backend.ts';
import { Backoff } from '../backoff.ts';
import type { ConsulHttp, ConsulReply } from './http.ts';
import { AbortedError } from './http.ts';

/** Sleep that an AbortSignal cuts short (resolves false when aborted). */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** FIFO counting semaphore. acquire() resolves to a release function, or null when aborted while queued. */
export class Semaphore {
  #free: number;
  readonly #queue: { grant: (r: (() => void) | null) => void; signal: AbortSignal; onAbort: () => void }[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  /** Permits not held right now (metrics: slots in use = size − free). */
  get free(): number {
    return this.#free;
  }

  /** Like acquire(), but ahead of every queued waiter (index sweeps borrow blocking slots between turns). */
  acquireFirst(signal: AbortSignal): Promise<(() => void) | null> {
    return this.acquire(signal, true);
  }

  acquire(signal: AbortSignal, first = false): Promise<(() => void) | null> {
    if (signal.aborted) return Promise.resolve(null);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((grant) => {
      const entry = {
        grant,
        signal,
        onAbort: () => {
          const i = this.#queue.indexOf(entry);
          if (i >= 0) this.#queue.splice(i, 1);
          grant(null);
        },
      };
      signal.addEventListener('abort', entry.onAbort, { once: true });
      if (first) this.#queue.unshift(entry);
      else this.#queue.push(entry);
    });
  }

  #releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.#queue.shift();
      if (next) {
        next.signal.removeEventListener('abort', next.onAbort);
        next.grant(this.#releaser());
      } else {
        this.#free++;
      }
    };
  }
}

/** Token bucket (Consul blocking.mdx: burst 2): a loop that keeps returning at once is slowed to one per interval. */
export class TokenBucket {
  readonly #capacity: number;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(capacity: number, intervalMs: number, now: () => number) {
    this.#capacity = capacity;
    this.#intervalMs = intervalMs;
    this.#now = now;
    this.#tokens = capacity;
    this.#last = now();
  }

  /** Take a token; resolves when one is available (false when aborted). */
  async take(signal: AbortSignal): Promise<boolean> {
    if (this.#intervalMs <= 0) return !signal.aborted;
    for (;;) {
      const t = this.#now();
      this.#tokens = Math.min(this.#capacity, this.#tokens + (t - this.#last) / this.#intervalMs);
      this.#last = t;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return !signal.aborted;
      }
      if (!(await sleep(Math.ceil((1 - this.#tokens) * this.#intervalMs), signal))) return false;
    }
  }
}

export interface LoopPools {
  /** Non-blocking requests (first fetch, after an index reset). */
  readonly fetch: Semaphore;
  /** Blocking requests. */
  readonly blocking: Semaphore;
  /** Wait (s) for the next blocking request: shorter while more loops than blocking slots share them. */
  readonly waitSeconds: () => number;
}

export interface LoopOptions {
  readonly http: ConsulHttp;
  readonly path: string;
  readonly query: Readonly<Record<string, string | undefined>>;
  readonly pools: LoopPools;
  readonly requestTimeoutMs: number;
  readonly minIntervalMs: number;
  readonly now: () => number;
  readonly random?: () => number;
  /** Data that may have changed (new index, or index reset). Throwing a BackendError counts as a failure. */
  readonly onData: (reply: ConsulReply) => void;
  /** A request completed (with or without change): the source is reachable again. */
  readonly onOk: () => void;
  readonly onError: (err: BackendError) => void | Promise<void>;
}

/**
 * A blocking-query loop. Index rules (Consul blocking.mdx):
 * - first request and the one after a reset carry no index (non-blocking, fetch pool);
 * - an index lower than the last one resets to 0 (snapshot restore, upgrade) and the reply counts as a change;
 * - a reply index of 0 after sending 0 becomes 1, so index 0 is never sent twice in a row (no busy loop);
 * - the same index back means "no change" (wait expired or idempotent write): onData is not called;
 * - after any failed request (refused, reset, 5xx, timeout) the next one is a fresh non-blocking read whose
 *   result is applied whatever its index: an agent restarted with other data can come back with the very index
 *   we hold, and a blocking query on it would wait, and then report "no change", for ever (issue 10 #13). A
 *   blocking query whose connection is reset is re-sent at once by http.ts as such a fresh read (`reread`).
 */
export class BlockingLoop {
  readonly #o: LoopOptions;
  readonly #abort = new AbortController();
  readonly #bucket: TokenBucket;
  readonly #backoff: Backoff;
  #index = 0;
  #running = false;
  #poked = false;
  #holdingBlocking = false;
  #queueAbort: AbortController | null = null;
  /** Requests sent with index 0 — exposed for tests. */
  zeroIndexRequests = 0;

  constructor(opts: LoopOptions) {
    this.#o = opts;
    this.#bucket = new TokenBucket(2, opts.minIntervalMs, opts.now);
    this.#backoff = new Backoff(opts.random ? { random: opts.random } : {});
  }

  get index(): number {
    return this.#index;
  }

  get stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  /** A blocking query of this loop is in flight: Consul itself answers it when the resource changes. */
  get holdingBlocking(): boolean {
    return this.#holdingBlocking;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#run();
  }

  stop(): void {
    this.#abort.abort();
    this.#queueAbort?.abort(); // a loop queued for a slot leaves the queue
  }

  /**
   * A hint that this resource changed (from the /v1/health/state watch). Only matters while the loop queues for a
   * blocking slot (more watches than slots): it then reads at once through the fetch pool instead of waiting its
   * turn. A loop holding a blocking query needs nothing: Consul wakes it, or the next query returns at once.
   */
  poke(): void {
    if (this.#index === 0 || this.stopped) return; // its next request is an immediate read anyway
    if (this.#holdingBlocking) return; // Consul answers the held query when the resource changes
    this.#poked = true;
    this.#queueAbort?.abort();
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let lastSentZero = false;
    let haveToken = false;
    while (!signal.aborted) {
      if (!haveToken && !(await this.#bucket.take(signal))) return;
      haveToken = false;
      // A poked read sends index 1 ("always safe", blocking.mdx): immediate on any live cluster, never index 0.
      const pokeRead = this.#poked && this.#index > 0;
      this.#poked = false;
      const sent = pokeRead ? 1 : this.#index;
      const blocking = sent > 0 && !pokeRead;
      let release: (() => void) | null;
      if (blocking) {
        const qa = new AbortController();
        this.#queueAbort = qa;
        // One controller, not AbortSignal.any([signal, qa.signal]): 10,000 queued loops each held a composite
        // signal and its listeners (stop() aborts qa too).
        release = await this.#o.pools.blocking.acquire(qa.signal);
        this.#queueAbort = null;
        if (release === null) {
          if (signal.aborted) return;
          haveToken = true; // poked while queued: go round again and read at once, same token
          continue;
        }
      } else {
        release = await this.#o.pools.fetch.acquire(signal);
        if (release === null) return;
      }
      let reply: ConsulReply;
      try {
        const waitS = blocking ? this.#o.pools.waitSeconds() : pokeRead ? 1 : 0;
        // Consul adds up to wait/16 of jitter; beyond wait + wait/16 + requestTimeoutMs the request is hung.
        const timeoutMs = waitS * 1000 + Math.ceil((waitS * 1000) / 16) + this.#o.requestTimeoutMs;
        const query = sent > 0 ? { ...this.#o.query, index: String(sent), wait: `${waitS}s` } : this.#o.query;
        if (sent === 0) this.zeroIndexRequests++;
        lastSentZero = sent === 0;
        this.#holdingBlocking = blocking;
        reply = await this.#o.http.get(this.#o.path, { query, timeoutMs, signal });
        this.#holdingBlocking = false;
      } catch (e) {
        this.#holdingBlocking = false;
        release();
        if (e instanceof AbortedError || signal.aborted) return;
        // Whatever answers next may not be the agent that gave us this index (see the class comment).
        this.#index = 0;
        await this.#o.onError(asBackendError(e));
        if (!(await sleep(this.#backoff.next(), signal))) return;
        continue;
      }
      release();
      if (signal.aborted) return;

      const got = reply.index;
      let changed: boolean;
      if (got === null) {
        // Every blocking endpoint sends X-Consul-Index; without it we cannot block, so poll at the bucket's pace.
        changed = true;
        this.#index = 0;
      } else if (reply.reread) {
        // Re-sent without index after a reset (http.ts): a fresh read, applied whatever its index.
        changed = true;
        this.#index = got;
      } else if (got < sent) {
        changed = true;
        this.#index = 0;
      } else {
        changed = sent === 0 || got > sent;
        this.#index = got;
      }
      if (this.#index <= 0 && lastSentZero) this.#index = 1;

      if (changed) {
        try {
          this.#o.onData(reply);
        } catch (e) {
          if (signal.aborted) return;
          // Unusable data: re-read after a backoff rather than block on an index we did not apply (index 1 is
          // always safe and never blocks on a live cluster, so a 0 is not sent twice in a row).
          this.#index = lastSentZero ? 1 : 0;
          await this.#o.onError(asBackendError(e));
          if (!(await sleep(this.#backoff.next(), signal))) return;
          continue;
        }
      }
      this.#backoff.reset();
      this.#o.onOk();
    }
  }
}

function asBackendError(e: unknown): BackendError {
  if (e instanceof BackendError) return e;
  return new BackendError('SVCDNS_BACKEND_BAD_DATA', `consul: ${(e as Error)?.message ?? String(e)}`, {}, e);
}

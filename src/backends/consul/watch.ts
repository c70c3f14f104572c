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

/**
 * Something queued for a permit (Semaphore.wait): granted a release function, or null when withdrawn. A
 * BlockingLoop is one itself, so 10,000 loops queued for a blocking slot hold no Promise, AbortController or
 * closure each while they wait (issue 11 item 4: those were ~1 KB a loop).
 */
export interface SemaphoreWaiter {
  grant(release: (() => void) | null): void;
}

/**
 * FIFO counting semaphore. acquire() resolves to a release function, or null when aborted while queued.
 * withdraw() is O(1): 10,000 watches queue for ~110 blocking slots, and every hinted change takes one out of the
 * queue (an indexOf and splice over the whole queue each time cost ~0.1 ms a change). A withdrawn entry stays in
 * the array, marked dead by its sequence number, and is skipped when it reaches the front.
 */
export class Semaphore {
  #free: number;
  /**
   * Queued waiters in order, with the sequence number each was queued under: a ring (parallel arrays, no object
   * per entry). Not Array shift/unshift: with the dead entries of withdrawn waiters the queue passes 10,000 entries
   * at 10k services, and past ~16k entries V8 moves the whole array on every shift() and unshift() (a CPU profile
   * of the idle rotation had a tenth of the backend's time in them).
   */
  #queue: (SemaphoreWaiter | undefined)[] = new Array<SemaphoreWaiter | undefined>(16);
  #seqs: number[] = new Array<number>(16).fill(0);
  #head = 0;
  #size = 0;
  /** Waiters queued now → the sequence number of their live entry. */
  readonly #live = new Map<SemaphoreWaiter, number>();
  #seq = 0;

  constructor(size: number) {
    this.#free = size;
  }

  get waiting(): number {
    return this.#live.size;
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
    return new Promise((resolve) => {
      const onAbort = () => {
        if (this.withdraw(entry)) resolve(null);
      };
      const entry: SemaphoreWaiter = {
        grant: (release) => {
          signal.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#enqueue(entry, first);
    });
  }

  /** Queue `w` for a permit; granted at once (synchronously) when one is free. */
  wait(w: SemaphoreWaiter): void {
    if (this.#free > 0) {
      this.#free--;
      w.grant(this.#releaser());
      return;
    }
    this.#enqueue(w, false);
  }

  /** Take `w` out of the queue; false when it was not queued (already granted). It is not called back. */
  withdraw(w: SemaphoreWaiter): boolean {
    return this.#live.delete(w);
  }

  #enqueue(w: SemaphoreWaiter, first: boolean): void {
    // Queued again while queued: it moves (its old entry is dead), never holds two places.
    const seq = ++this.#seq;
    this.#live.set(w, seq);
    if (this.#size === this.#queue.length) this.#grow();
    const mask = this.#queue.length - 1;
    let at: number;
    if (first) at = this.#head = (this.#head - 1) & mask;
    else at = (this.#head + this.#size) & mask;
    this.#queue[at] = w;
    this.#seqs[at] = seq;
    this.#size++;
  }

  /** Double the ring, its entries moved to the front in order. */
  #grow(): void {
    const n = this.#queue.length;
    const q = new Array<SemaphoreWaiter | undefined>(n * 2);
    const s = new Array<number>(n * 2).fill(0);
    for (let i = 0; i < this.#size; i++) {
      const from = (this.#head + i) & (n - 1);
      q[i] = this.#queue[from];
      s[i] = this.#seqs[from]!;
    }
    this.#queue = q;
    this.#seqs = s;
    this.#head = 0;
  }

  /** The first live waiter, taken out of the queue (dead entries before it are dropped), or undefined. */
  #next(): SemaphoreWaiter | undefined {
    while (this.#size > 0) {
      const at = this.#head;
      const w = this.#queue[at]!;
      const seq = this.#seqs[at];
      this.#queue[at] = undefined;
      this.#head = (at + 1) & (this.#queue.length - 1);
      this.#size--;
      if (this.#live.get(w) !== seq) continue; // withdrawn (and maybe queued again further back)
      this.#live.delete(w);
      return w;
    }
    return undefined;
  }

  #releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.#next();
      if (next) next.grant(this.#releaser());
      else this.#free++;
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

  /** Take a token if one is available now (no waiting, no allocation). */
  tryTake(): boolean {
    if (this.#intervalMs <= 0) return true;
    const t = this.#now();
    this.#tokens = Math.min(this.#capacity, this.#tokens + (t - this.#last) / this.#intervalMs);
    this.#last = t;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
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

/** What loops of one kind share (one object for 10,000 service watches, not one each: issue 11 item 4). */
export interface LoopOptions {
  readonly http: ConsulHttp;
  readonly pools: LoopPools;
  readonly requestTimeoutMs: number;
  readonly minIntervalMs: number;
  readonly now: () => number;
  readonly random?: () => number;
}

/** What one loop reports to. A service watch is its own handler (no closures per loop). */
export interface LoopHandler {
  /** onData gets the body's bytes (ConsulHttp `raw`), not parsed JSON: a reply too large to parse in one piece. */
  readonly rawBody?: boolean;
  /** Data that may have changed (new index, or index reset). Throwing a BackendError counts as a failure. */
  onData(reply: ConsulReply): void;
  /** A request completed (with or without change): the source is reachable again. */
  onOk(): void;
  onError(err: BackendError): void | Promise<void>;
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
export class BlockingLoop implements SemaphoreWaiter {
  readonly #o: LoopOptions;
  readonly #path: string;
  readonly #query: Readonly<Record<string, string | undefined>>;
  readonly #h: LoopHandler;
  readonly #bucket: TokenBucket;
  /** Made at the first failure: most loops never fail, and 10,000 of them need no Backoff each. */
  #backoff: Backoff | null = null;
  #index = 0;
  #running = false;
  #poked = false;
  #holdingBlocking = false;
  #stopped = false;
  /**
   * Aborts what the loop awaits now (a request, a sleep) on stop(). Made per operation, not once per loop: a loop
   * queued for a slot holds none (10,000 loops each held a controller, its signal and the signal's listener map).
   */
  #inflight: AbortController | null = null;
  /** The pool this loop is queued in (this loop is the queue entry itself). */
  #queuedIn: Semaphore | null = null;
  /** The round in progress: a token already taken, what it sends, and whether the last request sent index 0. */
  #haveToken = false;
  #sent = 0;
  #blocking = false;
  #pokeRead = false;
  #lastSentZero = false;
  /** Requests sent with index 0 — exposed for tests. */
  zeroIndexRequests = 0;

  constructor(opts: LoopOptions, path: string, query: Readonly<Record<string, string | undefined>>, handler: LoopHandler) {
    this.#o = opts;
    this.#path = path;
    this.#query = query;
    this.#h = handler;
    this.#bucket = new TokenBucket(2, opts.minIntervalMs, opts.now);
  }

  #nextBackoff(): number {
    this.#backoff ??= new Backoff(this.#o.random ? { random: this.#o.random } : {});
    return this.#backoff.next();
  }

  get index(): number {
    return this.#index;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** A blocking query of this loop is in flight: Consul itself answers it when the resource changes. */
  get holdingBlocking(): boolean {
    return this.#holdingBlocking;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#next();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#inflight?.abort();
    this.#leaveQueue(); // a loop queued for a slot leaves the queue
  }

  /**
   * A hint that this resource changed (from the /v1/health/state watch). Only matters while the loop queues for a
   * blocking slot (more watches than slots): it then reads at once through the fetch pool instead of waiting its
   * turn. A loop holding a blocking query needs nothing: Consul wakes it, or the next query returns at once.
   */
  poke(): void {
    if (this.#index === 0 || this.#stopped) return; // its next request is an immediate read anyway
    if (this.#holdingBlocking) return; // Consul answers the held query when the resource changes
    this.#poked = true;
    if (this.#queuedIn === this.#o.pools.blocking) this.#leaveQueue();
  }

  #leaveQueue(): void {
    const pool = this.#queuedIn;
    if (pool !== null && pool.withdraw(this)) this.grant(null);
  }

  /** A signal for the next await, aborted by stop(). */
  #signal(): AbortSignal {
    const c = new AbortController();
    this.#inflight = c;
    if (this.#stopped) c.abort();
    return c.signal;
  }

  // The loop is a chain of callbacks, not an async function: a loop waiting its turn for a slot is then only its
  // entry in the Semaphore's queue (this object), with no suspended frame, generator or promise of its own
  // (~450 B a loop, issue 11 item 4). One round: a token (#next), a permit (grant), the request (#send), its
  // reply (#onReply) or failure (#onFailure), then #next again.

  /** Top of a round: take a token (waiting for one if the loop returns too fast), then queue for a permit. */
  #next(): void {
    if (this.#stopped) return;
    if (this.#haveToken || this.#bucket.tryTake()) {
      this.#haveToken = false;
      this.#queue();
      return;
    }
    void this.#bucket.take(this.#signal()).then((ok) => {
      this.#inflight = null;
      if (ok && !this.#stopped) this.#queue();
    });
  }

  #queue(): void {
    // A poked read sends index 1 ("always safe", blocking.mdx): immediate on any live cluster, never index 0.
    const pokeRead = this.#poked && this.#index > 0;
    this.#poked = false;
    this.#pokeRead = pokeRead;
    this.#sent = pokeRead ? 1 : this.#index;
    const blocking = this.#sent > 0 && !pokeRead;
    this.#blocking = blocking;
    const pool = blocking ? this.#o.pools.blocking : this.#o.pools.fetch;
    this.#queuedIn = pool;
    pool.wait(this); // may grant at once
  }

  /** Semaphore callback: the permit this loop queued for, or null when stop() or poke() took it out of the queue. */
  grant(release: (() => void) | null): void {
    if (this.#queuedIn === null) {
      release?.(); // not waiting (cannot happen): hand the permit on
      return;
    }
    this.#queuedIn = null;
    if (release === null) {
      if (this.#stopped) return;
      this.#haveToken = true; // poked while queued: go round again and read at once, same token
      this.#next();
      return;
    }
    if (this.#stopped) {
      release();
      return;
    }
    const sent = this.#sent;
    const blocking = this.#blocking;
    if (sent === 0) this.zeroIndexRequests++;
    this.#lastSentZero = sent === 0;
    this.#holdingBlocking = blocking;
    let reply: Promise<ConsulReply>;
    try {
      reply = this.#request(sent, blocking, this.#pokeRead);
    } catch (e) {
      reply = Promise.reject(e);
    }
    reply.then(
      (r) => {
        this.#inflight = null;
        this.#holdingBlocking = false;
        release();
        if (!this.#stopped) this.#onReply(r, sent);
      },
      (e: unknown) => {
        this.#inflight = null;
        this.#holdingBlocking = false;
        release();
        if (e instanceof AbortedError || this.#stopped) return;
        // Whatever answers next may not be the agent that gave us this index (see the class comment).
        this.#index = 0;
        this.#failed(asBackendError(e));
      },
    );
  }

  /** One request. */
  #request(sent: number, blocking: boolean, pokeRead: boolean): Promise<ConsulReply> {
    const waitS = blocking ? this.#o.pools.waitSeconds() : pokeRead ? 1 : 0;
    // Consul adds up to wait/16 of jitter; beyond wait + wait/16 + requestTimeoutMs the request is hung.
    const timeoutMs = waitS * 1000 + Math.ceil((waitS * 1000) / 16) + this.#o.requestTimeoutMs;
    const query = sent > 0 ? { ...this.#query, index: String(sent), wait: `${waitS}s` } : this.#query;
    return this.#o.http.get(this.#path, { query, timeoutMs, signal: this.#signal(), raw: this.#h.rawBody === true });
  }

  #onReply(reply: ConsulReply, sent: number): void {
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
    if (this.#index <= 0 && this.#lastSentZero) this.#index = 1;
    if (changed) {
      try {
        this.#h.onData(reply);
      } catch (e) {
        if (this.#stopped) return;
        // Unusable data: re-read after a backoff rather than block on an index we did not apply (index 1 is
        // always safe and never blocks on a live cluster, so a 0 is not sent twice in a row).
        this.#index = this.#lastSentZero ? 1 : 0;
        this.#failed(asBackendError(e));
        return;
      }
    }
    this.#backoff?.reset();
    this.#h.onOk();
    this.#next();
  }

  /** Report a failure, wait a backoff, go round again. */
  #failed(err: BackendError): void {
    void Promise.resolve(this.#h.onError(err)).then(async () => {
      if (this.#stopped) return;
      const ok = await sleep(this.#nextBackoff(), this.#signal());
      this.#inflight = null;
      if (ok && !this.#stopped) this.#next();
    });
  }
}

function asBackendError(e: unknown): BackendError {
  if (e instanceof BackendError) return e;
  return new BackendError('SVCDNS_BACKEND_BAD_DATA', `consul: ${(e as Error)?.message ?? String(e)}`, {}, e);
}

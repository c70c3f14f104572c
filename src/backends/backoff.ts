// backends/backoff: exponential backoff with full jitter, shared by every watching backend (§6.3).

export const BACKOFF_INITIAL_MS = 250;
export const BACKOFF_MAX_MS = 30_000;

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  /** Injected for tests; returns [0,1). */
  random?: () => number;
}

/** Delay n (0-based) = random in [d/2, d] with d = min(max, initial * 2^n): never zero, never above max. */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(opts: BackoffOptions = {}) {
    this.#initialMs = opts.initialMs ?? BACKOFF_INITIAL_MS;
    this.#maxMs = opts.maxMs ?? BACKOFF_MAX_MS;
    this.#random = opts.random ?? Math.random;
    if (!(this.#initialMs > 0) || !(this.#maxMs >= this.#initialMs)) {
      throw new RangeError(`Invalid backoff: initialMs must be > 0 and maxMs >= initialMs`);
    }
  }

  /** The delay before the next attempt, and count the attempt. */
  next(): number {
    const d = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.round(d / 2 + (this.#random() * d) / 2);
  }

  get attempts(): number {
    return this.#attempt;
  }

  reset(): void {
    this.#attempt = 0;
  }
}

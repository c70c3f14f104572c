// test/helpers/recording-sink: a BackendSink that records every report in order, with waits that wake on the
// next report and fail after a deadline (no fixed sleeps).

import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { BackendError, BackendSink } from '../../src/backends/backend.ts';
import type { ServiceSnapshot } from '../../src/model/service.ts';
import { HANG_DEADLINE_MS } from './deadline.ts';

export type SinkEvent = { kind: 'snapshot'; snap: ServiceSnapshot; at: number } | { kind: 'error'; err: BackendError; at: number };

/** `scope/name` → sorted addresses of the served instances (for failure messages and assertions). */
export function view(snap: ServiceSnapshot): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, s] of snap.services) out[k] = s.instances.map((i) => i.address).sort();
  return out;
}

export class RecordingSink implements BackendSink {
  readonly events: SinkEvent[] = [];
  #wake: (() => void) | null = null;

  snapshot(snap: ServiceSnapshot): void {
    this.events.push({ kind: 'snapshot', snap, at: performance.now() });
    this.#wake?.();
  }
  error(err: BackendError): void {
    this.events.push({ kind: 'error', err, at: performance.now() });
    this.#wake?.();
  }

  get snapshots(): ServiceSnapshot[] {
    return this.events.flatMap((e) => (e.kind === 'snapshot' ? [e.snap] : []));
  }
  get errors(): BackendError[] {
    return this.events.flatMap((e) => (e.kind === 'error' ? [e.err] : []));
  }
  get last(): ServiceSnapshot {
    const s = this.events.findLast((e) => e.kind === 'snapshot');
    assert.ok(s && s.kind === 'snapshot', 'a snapshot was emitted');
    return s.snap;
  }

  /** The first event of that kind at index >= from. */
  async next<K extends SinkEvent['kind']>(kind: K, from: number, timeoutMs = HANG_DEADLINE_MS): Promise<Extract<SinkEvent, { kind: K }>> {
    const found = await this.#until(from, timeoutMs, (e) => e.kind === kind, `no ${kind} event`);
    return found.event as Extract<SinkEvent, { kind: K }>;
  }

  /** The first snapshot at index >= from satisfying `pred`. */
  async snapshotWhere(from: number, pred: (s: ServiceSnapshot) => boolean, timeoutMs = HANG_DEADLINE_MS): Promise<{ snap: ServiceSnapshot; at: number; index: number }> {
    const { event, index } = await this.#until(from, timeoutMs, (e) => e.kind === 'snapshot' && pred(e.snap), 'no matching snapshot');
    const e = event as Extract<SinkEvent, { kind: 'snapshot' }>;
    return { snap: e.snap, at: e.at, index };
  }

  async #until(from: number, timeoutMs: number, match: (e: SinkEvent) => boolean, what: string): Promise<{ event: SinkEvent; index: number }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.events.length; i++) if (match(this.events[i]!)) return { event: this.events[i]!, index: i };
      const left = deadline - performance.now();
      if (left <= 0) {
        const seen = this.events.slice(from).map((e) => (e.kind === 'snapshot' ? view(e.snap) : `${e.err.code}: ${e.err.message}`));
        assert.fail(`${what} within ${timeoutMs} ms; got ${JSON.stringify(seen)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = null;
    }
  }
}

// observability/query-log: the sampled per-query log (config `queryLog`), JSON lines to its own pino destination
// (a file or stdout), never the main log. Only ever called for queries that won the sampling draw.

import { resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Peer } from '../dns/server.ts';
import { parseQuery, PARSE, Query } from '../dns/wire.ts';
import { logOptions } from './logger.ts';

export interface QueryLogConfig {
  readonly enabled: boolean;
  /** Fraction of queries recorded, 0..1. */
  readonly sampleRate: number;
  /** File (relative to `baseDir`) or "stdout"; absent: stdout. */
  readonly path?: string | undefined;
}

export class QueryLog {
  readonly sampleRate: number;
  readonly #log: Logger;
  readonly #dest: pino.DestinationStream & { flushSync?: () => void; end?: () => void };
  readonly #q = new Query();
  readonly #scratch = Buffer.allocUnsafe(256);
  readonly #onRecord: () => void;

  #failed = false;

  /**
   * `onRecord` counts records (svcdns_query_log_records_total). `onError` hears about a destination that cannot
   * be opened or written (bad path, disk full): the log stops recording, DNS keeps answering.
   */
  constructor(config: QueryLogConfig, baseDir: string, onRecord: () => void = () => {}, onError: (err: Error) => void = () => {}) {
    this.sampleRate = config.sampleRate;
    const toStdout = config.path === undefined || config.path === 'stdout' || config.path === '-';
    // Asynchronous writes: a slow disk delays log lines, not answers. mkdir so a fresh log dir works.
    this.#dest = toStdout ? pino.destination({ dest: 1, sync: false }) : pino.destination({ dest: resolve(baseDir, config.path!), sync: false, mkdir: true });
    // sonic-boom reports open/write failures as 'error' events; unhandled, one would crash the server.
    (this.#dest as unknown as NodeJS.EventEmitter).on('error', (err: Error) => {
      if (this.#failed) return;
      this.#failed = true;
      // A stream that never opened would throw from pino's exit hook (flushSync: "not ready"); neutralise it the
      // way pino itself does for EPIPE (tools.js filterBrokenPipe).
      const d = this.#dest as unknown as Record<'write' | 'end' | 'flushSync' | 'flush', () => void>;
      d.write = d.end = d.flushSync = d.flush = () => {};
      onError(err);
    });
    this.#log = pino(logOptions('info', { app: 'svcdns', log: 'query' }), this.#dest);
    this.#onRecord = onRecord;
  }

  /**
   * Record one query and what was sent back (`out` null: dropped). `micros`: processing time. `peer`: the
   * client (its address and source port), as the listener received it; absent when the caller has none.
   */
  record(msg: Uint8Array, len: number, tcp: boolean, out: Buffer | null, micros: number, peer?: Peer): void {
    if (this.#failed) return;
    const q = this.#q;
    const status = parseQuery(msg, len, q, this.#scratch);
    this.#onRecord();
    if (status === PARSE.DROP) {
      this.#log.info({ event: 'query', transport: tcp ? 'tcp' : 'udp', client: peer?.address ?? null, clientPort: peer?.port ?? null, dropped: true, bytes: len });
      return;
    }
    const ok = status === PARSE.OK;
    this.#log.info({
      event: 'query',
      transport: tcp ? 'tcp' : 'udp',
      client: peer?.address ?? null,
      clientPort: peer?.port ?? null,
      id: q.id,
      qname: ok ? q.qname : null,
      qtype: ok ? q.qtype : null,
      qclass: ok ? q.qclass : null,
      edns: ok ? (q.edns ? q.ednsUdpSize : false) : null,
      do: ok ? q.dnssecOk : null,
      rcode: out === null ? null : out[3]! & 0x0f,
      tc: out === null ? null : (out[2]! & 0x02) !== 0,
      answers: out === null ? 0 : (out[6]! << 8) | out[7]!,
      bytes: out === null ? 0 : out.length,
      us: Math.round(micros * 10) / 10,
    });
  }

  /** Flush what is buffered and release the destination. */
  close(): void {
    try {
      this.#dest.flushSync?.();
    } catch {
      // not ready yet (nothing written): nothing to flush
    }
    this.#dest.end?.();
  }
}

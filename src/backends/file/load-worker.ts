// backends/file/load-worker: runs one load of the services file in its own thread (parse-worker.ts) and hands
// the result to the backend without a long pause of this (the DNS) thread.
//
// One thread per load, terminated when its answer is in: the parse's garbage (hundreds of MB at 10k × 10) dies
// with its heap instead of staying in this process (issue 11 item 4). The result comes in chunks that this side
// pulls one at a time, each after a turn of the event loop (setImmediate), so DNS packets are answered between
// two deserialisations. The thread's heap is bounded (`maxHeapMb`): a file too big for it ends the thread
// (ERR_WORKER_OUT_OF_MEMORY), which is reported as a `crashed` load; the served data stays (§6.3).

import { Worker } from 'node:worker_threads';
import type { ServiceDef } from './parse.ts';
import type { LoadReply, LoadRequest } from './parse-worker.ts';

export type LoadResult =
  | { readonly kind: 'read-error'; readonly code: string | undefined; readonly message: string }
  | { readonly kind: 'too-big'; readonly inode: string; readonly size: number }
  | { readonly kind: 'unchanged'; readonly inode: string }
  | { readonly kind: 'invalid'; readonly inode: string; readonly hash: string; readonly message: string; readonly details: Record<string, unknown> }
  | { readonly kind: 'ok'; readonly inode: string; readonly hash: string; readonly services: ServiceDef[]; readonly sigs: string[] }
  /** The thread died before answering (out of memory, an internal error) or was stopped. */
  | { readonly kind: 'crashed'; readonly reason: string };

const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './parse-worker.ts' : './parse-worker.js', import.meta.url);

export interface RunningLoad {
  readonly result: Promise<LoadResult>;
  /** Ends the thread; `result` settles as `crashed` ("stopped") if it had not settled yet. */
  cancel(): void;
}

export function loadInWorker(req: LoadRequest, maxHeapMb: number): RunningLoad {
  const worker = new Worker(ENTRY, { workerData: req, resourceLimits: { maxOldGenerationSizeMb: maxHeapMb }, stdout: false, stderr: false });
  let settle: (r: LoadResult) => void = () => {};
  const result = new Promise<LoadResult>((resolve) => {
    let done = false;
    const services: ServiceDef[] = [];
    const sigs: string[] = [];
    settle = (r) => {
      if (done) return;
      done = true;
      resolve(r);
      void worker.terminate();
    };
    worker.on('message', (m: LoadReply) => {
      switch (m.t) {
        case 'services':
          for (const d of m.defs) {
            services.push(d.def);
            sigs.push(d.sig);
          }
          // Pull the next chunk after DNS packets queued meanwhile were handled.
          setImmediate(() => {
            if (!done) worker.postMessage('next');
          });
          return;
        case 'done':
          return settle({ kind: 'ok', inode: m.inode, hash: m.hash, services, sigs });
        case 'read-error':
          return settle({ kind: 'read-error', code: m.code, message: m.message });
        case 'too-big':
          return settle({ kind: 'too-big', inode: m.inode, size: m.size });
        case 'unchanged':
          return settle({ kind: 'unchanged', inode: m.inode });
        case 'invalid':
          return settle({ kind: 'invalid', inode: m.inode, hash: m.hash, message: m.message, details: m.details });
      }
    });
    worker.on('error', (err: NodeJS.ErrnoException) => {
      const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
      settle({ kind: 'crashed', reason: oom ? `parsing needs more than parseHeapMb (${maxHeapMb} MB) of memory` : `the parser thread failed: ${err.message}` });
    });
    worker.on('exit', (code) => settle({ kind: 'crashed', reason: `the parser thread exited (code ${code}) before it answered` }));
  });
  return { result, cancel: () => settle({ kind: 'crashed', reason: 'stopped' }) };
}

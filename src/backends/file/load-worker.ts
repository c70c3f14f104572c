// backends/file/load-worker: runs one load of the services file in a child process (parse-worker.ts) and hands
// the result to the backend without a long pause of this (the DNS) thread.
//
// One process per load, ended when its answer is in: the parse's garbage (hundreds of MB at 10k × 10) goes back
// to the OS with it instead of staying in this process (issue 11 item 4; a worker thread's heap pages stay mapped
// after it ends). The result comes in chunks that this side pulls one at a time, each after a turn of the event
// loop (setImmediate), so DNS packets are answered between two deserialisations. The child's heap is bounded
// (`maxHeapMb`): a file too big for it ends the child, which is reported as a `crashed` load; the served data
// stays (§6.3).

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadReply, LoadRequest, SignedDef } from './parse-worker.ts';

export type LoadResult =
  | { readonly kind: 'read-error'; readonly code: string | undefined; readonly message: string }
  | { readonly kind: 'too-big'; readonly inode: string; readonly size: number }
  | { readonly kind: 'unchanged'; readonly inode: string }
  | { readonly kind: 'invalid'; readonly inode: string; readonly hash: string; readonly message: string; readonly details: Record<string, unknown> }
  | { readonly kind: 'ok'; readonly inode: string; readonly hash: string; readonly entries: SignedDef[] }
  /** The child died before answering (out of memory, an internal error) or was stopped. */
  | { readonly kind: 'crashed'; readonly reason: string };

const ENTRY = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './parse-worker.ts' : './parse-worker.js', import.meta.url));

export interface RunningLoad {
  readonly result: Promise<LoadResult>;
  /** Ends the child; `result` settles as `crashed` ("stopped") if it had not settled yet. */
  cancel(): void;
}

export function loadInWorker(req: LoadRequest, maxHeapMb: number): RunningLoad {
  // A fresh execArgv: the parent's may hold --inspect, --cpu-prof or test hooks that must not run twice.
  const child = fork(ENTRY, [], {
    execArgv: [`--max-old-space-size=${maxHeapMb}`, '--disable-warning=ExperimentalWarning'],
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  let settle: (r: LoadResult) => void = () => {};
  const result = new Promise<LoadResult>((resolve) => {
    let done = false;
    const entries: SignedDef[] = [];
    settle = (r) => {
      if (done) return;
      done = true;
      resolve(r);
      child.kill('SIGKILL');
    };
    child.on('message', (m: LoadReply) => {
      switch (m.t) {
        case 'services':
          for (const d of m.defs) entries.push(d);
          // Pull the next chunk after DNS packets queued meanwhile were handled.
          setImmediate(() => {
            if (!done && child.connected) child.send('next');
          });
          return;
        case 'done':
          return settle({ kind: 'ok', inode: m.inode, hash: m.hash, entries });
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
    child.on('error', (err) => settle({ kind: 'crashed', reason: `the parser process failed: ${err.message}` }));
    child.on('exit', (code, signal) => {
      const oom = /heap limit|out of memory/i.test(stderr);
      const last = stderr.trim().split('\n').filter((l) => l.trim() !== '').pop();
      settle({
        kind: 'crashed',
        reason: oom
          ? `parsing needs more than parseHeapMb (${maxHeapMb} MB) of memory`
          : `the parser process exited (${signal ?? `code ${code}`}) before it answered${last ? `: ${last.trim().slice(0, 200)}` : ''}`,
      });
    });
    child.send(req);
  });
  return { result, cancel: () => settle({ kind: 'crashed', reason: 'stopped' }) };
}

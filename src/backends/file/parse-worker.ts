// backends/file/parse-worker: the thread that reads, parses and validates a services file (issue 11 item 7).
//
// The YAML parse and the zod validation of a 10k × 10 file take seconds and hundreds of MB of garbage; here they
// never block the DNS thread, and the whole heap they used goes away with this thread (one thread per load; the
// parent terminates it once it has the result). Protocol (load-worker.ts sends one `LoadRequest` as workerData):
// - `read-error` (open/stat/read failed, errno code), `too-big` (size over the limit, not read), `unchanged`
//   (same content hash as the request's `lastHash`), `invalid` (the located BackendError, as parse.ts built it);
// - or `services` messages, CHUNK services each, each sent when the parent asks for it (`next`), so the parent
//   deserialises the result in small steps between DNS packets; then `done`.

import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { BackendError } from '../backend.ts';
import { parseServicesFile } from './parse.ts';
import type { ServiceDef } from './parse.ts';

export interface LoadRequest {
  readonly path: string;
  readonly display: string;
  readonly defaultScope: string;
  readonly maxFileBytes: number;
  /** Content hash of the last read; equal content answers `unchanged` without parsing. */
  readonly lastHash: string | null;
}

/** Each `services` entry: the definition and a signature of its served content (equal sig → same answers). */
export interface SignedDef {
  readonly def: ServiceDef;
  readonly sig: string;
}

export type LoadReply =
  | { readonly t: 'read-error'; readonly code: string | undefined; readonly message: string }
  | { readonly t: 'too-big'; readonly inode: string; readonly size: number }
  | { readonly t: 'unchanged'; readonly inode: string }
  | { readonly t: 'invalid'; readonly inode: string; readonly hash: string; readonly message: string; readonly details: Record<string, unknown> }
  | { readonly t: 'services'; readonly defs: SignedDef[] }
  | { readonly t: 'done'; readonly inode: string; readonly hash: string; readonly count: number };

/** Services per `services` message: ~5k instances at 10 per service, a few ms to deserialise. */
export const CHUNK = 500;

/** Signature of what a service serves when it has no checks (index.ts recomputes it for checked ones). */
export function defSig(def: ServiceDef): string {
  return JSON.stringify([def.ttlSeconds ?? null, def.instances]);
}

async function run(req: LoadRequest): Promise<void> {
  const post = (m: LoadReply) => parentPort!.postMessage(m);
  let buf: Buffer;
  let inode: string;
  try {
    // One open file for both: the inode must be that of the bytes read (a rename may land in between).
    const fh = await open(req.path, 'r');
    try {
      const st = await fh.stat();
      inode = `${st.dev}:${st.ino}`;
      if (st.size > req.maxFileBytes) return post({ t: 'too-big', inode, size: st.size });
      buf = await fh.readFile();
    } finally {
      await fh.close();
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return post({ t: 'read-error', code: e.code, message: e.message });
  }
  // The file grew between stat and read.
  if (buf.length > req.maxFileBytes) return post({ t: 'too-big', inode, size: buf.length });
  const hash = createHash('sha256').update(buf).digest('hex');
  if (hash === req.lastHash) return post({ t: 'unchanged', inode });
  let services: readonly ServiceDef[];
  try {
    services = parseServicesFile(buf.toString('utf8'), req.display, req.defaultScope).services;
  } catch (err) {
    const e = err instanceof BackendError ? err : new BackendError('SVCDNS_BACKEND_BAD_DATA', `${req.display}: ${String(err)}`, { file: req.display });
    // details.problems are strings; anything else in details is dropped by JSON (it must be cloneable).
    return post({ t: 'invalid', inode, hash, message: e.message, details: JSON.parse(JSON.stringify(e.details)) as Record<string, unknown> });
  }
  // The parent pulls each next chunk ('next') once it has handled the previous one and a turn of its loop.
  let i = 0;
  const sendNext = () => {
    if (i >= services.length) return post({ t: 'done', inode, hash, count: services.length });
    post({ t: 'services', defs: services.slice(i, i + CHUNK).map((def) => ({ def, sig: defSig(def) })) });
    i += CHUNK;
  };
  parentPort!.on('message', (m) => {
    if (m === 'next') sendNext();
  });
  sendNext();
}

if (parentPort) await run(workerData as LoadRequest);

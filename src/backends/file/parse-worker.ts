// backends/file/parse-worker: the child process that reads, parses and validates a services file (issue 11
// item 7).
//
// The YAML parse and the zod validation of a 10k × 10 file take seconds and hundreds of MB of garbage; here they
// never block the DNS thread, and all the memory they used goes back to the OS when this process exits (one
// process per load). A worker thread would not do: V8 keeps a dead isolate's heap pages mapped in the process
// (a 500 MB parse left ~450 MB of RSS behind). Protocol over the IPC channel (`serialization: 'advanced'`): the
// parent (load-worker.ts) sends one `LoadRequest`; this process answers with one of
// - `read-error` (open/stat/read failed, errno code), `too-big` (size over the limit, not read), `unchanged`
//   (same content hash as the request's `lastHash`), `invalid` (the located BackendError, as parse.ts built it);
// - or `services` messages, CHUNK services each, each sent when the parent asks for it (`next`), so the parent
//   deserialises the result in small steps between DNS packets; then `done`. A service whose signature equals
//   the one the request lists for it (`known`: what the parent serves now) is sent without its definition: the
//   parent keeps its own object, so a reload that changes one service allocates one service there (item 3).

import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Port } from '../../model/service.ts';
import { serviceKey } from '../../model/service.ts';
import { BackendError } from '../backend.ts';
import { parseServicesFile } from './parse.ts';
import type { InstanceDef, ServiceDef } from './parse.ts';

export interface LoadRequest {
  readonly path: string;
  readonly display: string;
  readonly defaultScope: string;
  readonly maxFileBytes: number;
  /** Content hash of the last read; equal content answers `unchanged` without parsing. */
  readonly lastHash: string | null;
  /** `key\tsig\n` of each service the parent serves now (one string: cheap to send). */
  readonly known: string;
}

/** Each `services` entry: a service, the signature of its definition (equal sig → same answers). */
export interface SignedDef {
  /** `scope/name` (serviceKey). */
  readonly key: string;
  readonly sig: string;
  /** Some instance is served only while its check passes (what it serves depends on more than `def`). */
  readonly checked: boolean;
  /** null: the same as the parent's (its `known` sig is equal). */
  readonly def: ServiceDef | null;
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

/** Signature (a short hash) of what a service serves when it has no checks: equal definitions, equal sig. */
export function defSig(def: ServiceDef): string {
  return `d${createHash('sha1').update(JSON.stringify([def.ttlSeconds ?? null, def.instances])).digest('base64')}`;
}

/**
 * The chunk to send, with equal `ports` and `tags` lists shared (instances of one service usually have the same):
 * the structured clone keeps that sharing, so the parent holds one list where it would hold thousands.
 */
function chunkOf(services: readonly ServiceDef[], known: ReadonlyMap<string, string>): SignedDef[] {
  const portsSeen = new Map<string, readonly Port[]>();
  const tagsSeen = new Map<string, readonly string[]>();
  const intern = <T>(seen: Map<string, T>, key: string, v: T): T => {
    const had = seen.get(key);
    if (had !== undefined) return had;
    seen.set(key, v);
    return v;
  };
  return services.map((def): SignedDef => {
    const key = serviceKey(def.scope, def.name);
    const sig = defSig(def);
    const checked = def.instances.some((i) => i.healthy && i.check !== null);
    if (known.get(key) === sig) return { key, sig, checked, def: null };
    const instances = def.instances.map((i): InstanceDef => ({
      ...i,
      ports: intern(portsSeen, JSON.stringify(i.ports), i.ports),
      tags: intern(tagsSeen, i.tags.join(','), i.tags),
    }));
    return { key, sig, checked, def: { ...def, instances } };
  });
}

async function run(req: LoadRequest): Promise<void> {
  const post = (m: LoadReply) => void process.send!(m);
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
  const known = new Map<string, string>();
  for (const line of req.known.split('\n')) {
    const tab = line.indexOf('\t');
    if (tab > 0) known.set(line.slice(0, tab), line.slice(tab + 1));
  }
  // The parent pulls each next chunk ('next') once it has handled the previous one and a turn of its loop.
  let i = 0;
  const sendNext = () => {
    if (i >= services.length) return post({ t: 'done', inode, hash, count: services.length });
    post({ t: 'services', defs: chunkOf(services.slice(i, i + CHUNK), known) });
    i += CHUNK;
  };
  process.on('message', (m) => {
    if (m === 'next') sendNext();
  });
  sendNext();
}

// Started by load-worker.ts with an IPC channel: the first message is the request. The parent ends this process
// once it has the answer; a lost parent ends it too.
if (process.send) {
  process.once('message', (req: LoadRequest) => void run(req));
  process.on('disconnect', () => process.exit(0));
}

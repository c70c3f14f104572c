// bench/file-memory: what the file backend and the store hold at F_SERVICES × F_PER (default 10,000 × 10)
// (issue 11 item 4), reported, never asserted. Writes the services file the realistic bench serves (JSON, one
// named port), loads it with the real backend (its parse runs in a child process, whose heap is not counted),
// and reads the V8 heap after a full GC at each step: the module loaded, the backend synced (its own tables plus
// the served Services), a deep copy of the served Services alone (so the tables are the rest), and the snapshot
// applied to a Store (its indexes, the Services shared). Also how long the store's first apply blocks.
// Usage: npx node --disable-warning=ExperimentalWarning bench/file-memory.ts
// F_HEAPSNAPSHOT=file: a V8 heap snapshot of the synced backend (before the store).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import type { ServiceSnapshot } from '../src/model/service.ts';
import { f, sleep, timeFirstFold } from './lib.ts';
import { writeServicesJson } from './realistic.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const services = Number(process.env.F_SERVICES ?? 10_000);
const per = Number(process.env.F_PER ?? 10);
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1048576;
};

const dir = mkdtempSync(join(tmpdir(), 'svcdns-fmem-'));
try {
  writeServicesJson(join(dir, 'services.json'), services, per);
  const h0 = heap();
  const { configSchema, create } = await import('../src/backends/file/index.ts');
  const { STAGE_FIRST_SYNC_OVER, Store } = await import('../src/store/store.ts');
  const h1 = heap();
  const backend = create(configSchema.parse({ type: 'file', path: 'services.json' }), { logger: pino({ level: 'silent' }), configDir: dir, env: {} });
  let last: ServiceSnapshot | null = null;
  const t0 = performance.now();
  backend.start({ snapshot: (s) => { last = s; }, error: (e) => { throw e; } });
  while (last === null) await sleep(20);
  const syncMs = performance.now() - t0;
  const snap = last as ServiceSnapshot;
  const h2 = heap();
  if (process.env.F_HEAPSNAPSHOT) writeHeapSnapshot(process.env.F_HEAPSNAPSHOT);
  let copy: unknown[] | null = structuredClone([...snap.services.values()]);
  const h3 = heap();
  const served = h3 - h2;
  copy.length = 0;
  copy = null;
  const store = new Store({ stageFirstSyncOver: STAGE_FIRST_SYNC_OVER }); // as the server's (app.ts)
  const fold = await timeFirstFold(store, 'file', snap);
  const h4 = heap();
  let instances = 0;
  for (const s of snap.services.values()) instances += s.instances.length;
  console.log(`file backend memory, ${snap.services.size} services × ${instances / Math.max(1, snap.services.size)} instances (V8 heap after GC; load ${f(syncMs)} ms)`);
  console.log(`  start: ${f(h0, 1)} MB; file backend + store modules loaded: +${f(h1 - h0, 1)} MB`);
  console.log(`  backend synced, with its snapshot: +${f(h2 - h1, 1)} MB`);
  console.log(`    the served Services themselves (a deep copy): ${f(served, 1)} MB`);
  console.log(`    the backend's own tables (parsed definitions, signatures, published map): ${f(h2 - h1 - served, 1)} MB`);
  console.log(`  the store's indexes on top (Services shared): +${f(h4 - h2, 1)} MB; its first sync: ${f(fold.allMs)} ms in all, the apply call ${f(fold.callMs)} ms, longest event-loop delay meanwhile ${f(fold.longestMs, 1)} ms`);
  console.log(`  process RSS: ${f(process.memoryUsage().rss / 1048576)} MB`);
  await backend.stop();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// bench/kubernetes-memory: where the Kubernetes backend's memory goes at K_SERVICES × K_PER (default 10,000 × 10),
// in one process with the API fake in a worker thread (its heap is not counted here). Reports V8 heap used (after
// a full GC) and RSS: at start, after loading the backend module (client-node), after the first sync (the
// backend's own tables plus the informer cache), and after that snapshot is folded into the real Store. Also the
// longest event-loop delay while the backend syncs (the backend alone, item 8) and how long the store's first
// apply of that snapshot blocks.
// Run with: npx node --expose-gc --disable-warning=ExperimentalWarning bench/kubernetes-memory.ts

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { timeFirstFold } from './lib.ts';

const services = Number(process.env.K_SERVICES ?? 10_000);
const per = Number(process.env.K_PER ?? 10);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const mb = (n: number) => (n / 1048576).toFixed(1);
const rows: string[][] = [];
const mark = (what: string) => {
  gc!(); gc!();
  const m = process.memoryUsage();
  rows.push([what, mb(m.heapUsed), mb(m.external + m.arrayBuffers), mb(m.rss)]);
};

mark('start (node + pino)');
const worker = new Worker(new URL('./kubernetes-fake-worker.ts', import.meta.url), { workerData: { services, perService: per } });
const { kubeconfig } = await new Promise<{ kubeconfig: string }>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
const { STAGE_FIRST_SYNC_OVER, Store } = await import('../src/store/store.ts');
mark('fake started in a worker, store module loaded');
const { configSchema, create } = await import('../src/backends/kubernetes/index.ts');
mark('kubernetes backend module loaded (client-node)');
const dir = mkdtempSync(join(tmpdir(), 'svcdns-kmem-'));
writeFileSync(join(dir, 'kubeconfig'), kubeconfig);
const backend = create(configSchema.parse({ type: 'kubernetes', kubeconfig: 'kubeconfig', defaultScope: 'default' }),
  { logger: pino({ level: 'silent' }), configDir: dir, env: {} });
const snapshots: import('../src/model/service.ts').ServiceSnapshot[] = [];
const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();
const t0 = performance.now();
backend.start({ snapshot: (s) => snapshots.push(s), error: () => {} });
while (snapshots.length === 0) await new Promise((r) => setTimeout(r, 1));
const syncMs = performance.now() - t0;
await new Promise((r) => setTimeout(r, 50)); // the histogram records a blocked turn only at its next timer
eld.disable();
const snap = snapshots[0]!;
let instances = 0;
for (const s of snap.services.values()) instances += s.instances.length;
mark(`synced: ${snap.services.size} services, ${instances} instances (backend tables + informer cache)`);
// K_HEAPSNAPSHOT=file: a V8 heap snapshot of the synced backend (before the store), to see what its tables hold.
if (process.env.K_HEAPSNAPSHOT) (await import('node:v8')).writeHeapSnapshot(process.env.K_HEAPSNAPSHOT);
const store = new Store({ stageFirstSyncOver: STAGE_FIRST_SYNC_OVER }); // as the server's (app.ts)
const fold = await timeFirstFold(store, 'kubernetes', snap);
mark('snapshot applied to a Store (its indexes)');
console.log(['stage', 'heap MB', 'external MB', 'RSS MB'].join(' | '));
for (const r of rows) console.log(r.join(' | '));
console.log(`sync ${syncMs.toFixed(0)} ms; longest event-loop delay while syncing: ${(eld.max / 1e6).toFixed(1)} ms (p99 ${(eld.percentile(99) / 1e6).toFixed(1)} ms); store's first sync: ${fold.allMs.toFixed(0)} ms in all, the apply call ${fold.callMs.toFixed(0)} ms, longest event-loop delay meanwhile ${fold.longestMs.toFixed(1)} ms`);
await backend.stop();
worker.postMessage({ stop: true });
await worker.terminate();
rmSync(dir, { recursive: true, force: true });

// bench/consul-memory: what the Consul backend and the store hold at C_SERVICES × C_PER (default 10,000 × 10)
// (issue 11 item 4), reported, never asserted. The fake runs in a child process; the backend and a Store run
// here, and the V8 heap is read after a full GC at each step:
// - the backend synced, its last snapshot kept (what the backend's own tables plus the served Services hold);
// - a deep copy of the served Services alone (what the data served costs, so the tables are the rest);
// - the same snapshot applied to a Store (what the store's indexes add on top of the Services it shares).
// Usage: npx node --disable-warning=ExperimentalWarning bench/consul-memory.ts

import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { configSchema } from '../src/backends/consul/config.ts';
import { ConsulBackend } from '../src/backends/consul/consul.ts';
import type { BackendError, BackendSink } from '../src/backends/backend.ts';
import type { ServiceSnapshot } from '../src/model/service.ts';
import { Store } from '../src/store/store.ts';
import { f, forkConsulFake, sleep } from './lib.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const services = Number(process.env.C_SERVICES ?? 10_000);
const per = Number(process.env.C_PER ?? 10);

const { child: fake, ready, call } = forkConsulFake();

const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1048576;
};

const { port } = await ready;
try {
  await call({ op: 'seed', services, per, nodes: 1000 });
  const h0 = heap();
  const cfg = configSchema.parse({ type: 'consul', address: `127.0.0.1:${port}` });
  const backend = new ConsulBackend(cfg, { logger: pino({ level: 'silent' }), configDir: process.cwd(), env: {} });
  let last: ServiceSnapshot | null = null;
  const sink: BackendSink = {
    snapshot: (s: ServiceSnapshot) => {
      last = s;
    },
    error: (_e: BackendError) => {},
  };
  const t0 = performance.now();
  backend.start(sink);
  while (last === null || (last as ServiceSnapshot).services.size < services) await sleep(100);
  const syncMs = performance.now() - t0;
  await sleep(2000);
  const snap = last as ServiceSnapshot;
  const h1 = heap();
  // C_HEAPSNAPSHOT=file: a V8 heap snapshot of the synced backend (before the copy and the store).
  if (process.env.C_HEAPSNAPSHOT) writeHeapSnapshot(process.env.C_HEAPSNAPSHOT);
  const copy = structuredClone([...snap.services.values()]);
  const h2 = heap();
  const served = h2 - h1;
  copy.length = 0;
  const store = new Store();
  store.register('consul', 'consul', (s) => backend.ownsScope(s));
  store.apply('consul', snap);
  const h3 = heap();
  // C_FLIPS=n: n health changes (a check critical, then passing again) applied through the fake while the store
  // follows (backend → store, as in the server); then the heap again: what each change leaves behind.
  const flips = Number(process.env.C_FLIPS ?? 0);
  let h4 = h3;
  if (flips > 0) {
    const sink2: BackendSink = { snapshot: (s: ServiceSnapshot) => store.apply('consul', s), error: () => {} };
    (sink as { snapshot: BackendSink['snapshot'] }).snapshot = sink2.snapshot;
    for (let i = 0; i < flips; i++) {
      const id = `svc-${(i * 7919) % services}-1`;
      await call({ op: 'setCheck', serviceId: id, status: 'critical' });
      await sleep(20);
      await call({ op: 'setCheck', serviceId: id, status: 'passing' });
      await sleep(20);
    }
    await sleep(3000);
    h4 = heap();
  }
  console.log(`consul backend memory, ${services} services × ${per} instances (V8 heap after GC; sync ${f(syncMs)} ms)`);
  console.log(`  backend synced, with its snapshot: +${f(h1 - h0, 1)} MB`);
  console.log(`    the served Services themselves (a deep copy): ${f(served, 1)} MB`);
  console.log(`    the backend's own tables (watch loops, signatures, node index, HTTP agent): ${f(h1 - h0 - served, 1)} MB`);
  console.log(`  the store's indexes on top (Services shared): +${f(h3 - h2 + served, 1)} MB`);
  if (flips > 0) console.log(`  after ${flips} health flips followed by the store: +${f(h4 - h3, 1)} MB`);
  console.log(`  process RSS: ${f(process.memoryUsage().rss / 1048576)} MB`);
  await backend.stop();
} finally {
  await Promise.race([call({ op: 'close' }), sleep(3000)]);
  fake.kill();
}

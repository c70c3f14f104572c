// bench/store-change: the cost of one service change (µs) in the main store, in the replication message and in
// a worker's replica, at 10 and at 10k services (issue 11 item 3: O(changes), not O(services)).
// Run: npx node --disable-warning=ExperimentalWarning bench/store-change.ts

import type { Instance, Service } from '../src/model/service.ts';
import { serviceKey } from '../src/model/service.ts';
import { StoreReplica, StoreReplicator, type ReplicaMessage } from '../src/store/replication.ts';
import { Store } from '../src/store/store.ts';

const CHANGES = Number(process.env.STORE_CHANGES ?? 2000);

function service(s: number, gen: number): Service {
  const instances: Instance[] = [];
  for (let i = 0; i < 10; i++) {
    instances.push({ address: `10.${(s >> 8) & 255}.${s & 255}.${i + 1 + (gen % 2) * 100}`, family: 4, ports: [{ name: 'http', port: 8080, protocol: 'tcp' }], weight: 1, tags: [] });
  }
  return { name: `svc-${s}`, scope: 'default', instances };
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function run(size: number): { store: number; message: number; replica: number; bytes: number } {
  const main = new Store();
  main.register('b', 'kubernetes', () => true);
  let services = new Map<string, Service>();
  for (let s = 0; s < size; s++) services.set(serviceKey('default', `svc-${s}`), service(s, 0));
  main.apply('b', { services, defaultScope: 'default' });
  const rep = new StoreReplicator(main);
  const replica = new StoreReplica(new Store());
  for (const m of rep.initial()) replica.apply(structuredClone(m));
  const sent: ReplicaMessage[] = [];
  rep.subscribe((m) => sent.push(m));

  // The snapshots a backend would hand in (built outside the timed part: the watchers are not measured here).
  const snaps = [];
  for (let c = 1; c <= CHANGES; c++) {
    const s = c % size;
    const key = serviceKey('default', `svc-${s}`);
    services = new Map(services); // the backend's own copy: not what this bench measures
    services.set(key, service(s, c));
    snaps.push({ services, defaultScope: 'default', changed: new Set([key]) });
  }
  let storeUs = 0;
  let messageUs = 0;
  let replicaUs = 0;
  let bytes = 0;
  for (const snap of snaps) {
    const t0 = cpuUs();
    main.apply('b', snap); // includes building the replication message (the replicator observes the store)
    const t1 = cpuUs();
    const ms = sent.splice(0);
    const cloned = ms.map((m) => structuredClone(m)); // what postMessage does
    const t2 = cpuUs();
    for (const m of cloned) replica.apply(m);
    const t3 = cpuUs();
    storeUs += t1 - t0;
    messageUs += t2 - t1;
    replicaUs += t3 - t2;
    bytes += JSON.stringify(ms).length;
  }
  return { store: storeUs / CHANGES, message: messageUs / CHANGES, replica: replicaUs / CHANGES, bytes: bytes / CHANGES };
}

for (const size of [10, 10_000]) {
  run(size); // warm-up
  const r = run(size);
  console.log(`${String(size).padStart(6)} services: store+replicator ${r.store.toFixed(1).padStart(8)} µs, clone ${r.message.toFixed(1).padStart(7)} µs, replica ${r.replica.toFixed(1).padStart(8)} µs per change; message ${r.bytes.toFixed(0)} B (JSON)`);
}

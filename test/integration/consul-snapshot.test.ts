// test/integration/consul-snapshot: after the first sync, one change in Consul costs O(changes) in the backend's
// emit path (issue 11 #3): the snapshot names only the changed service in its `changed` hint (ServiceSnapshot),
// every other service keeps its very object, the map is an updated copy sharing structure with the previous one
// (SnapshotMap, not a fresh 1,000-entry Map), and the previous snapshot is left as it was (snapshots are immutable).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { configSchema } from '../../src/backends/consul/config.ts';
import { ConsulBackend } from '../../src/backends/consul/consul.ts';
import { SnapshotMap } from '../../src/backends/snapshot-map.ts';
import { ConsulFake } from '../fakes/consul-fake.ts';
import { RecordingSink } from '../helpers/recording-sink.ts';

const SERVICES = 1000;

test(`one change among ${SERVICES} Consul services: a snapshot whose hint names only it (issue 11 #3, §6.1)`, async () => {
  const fake = await ConsulFake.start();
  fake.recordRequests = false;
  const cfg = configSchema.parse({ type: 'consul', address: fake.address, waitSeconds: 60, requestTimeoutMs: 5_000, minWatchIntervalMs: 0 });
  const b = new ConsulBackend(cfg, { logger: pino({ level: 'silent' }), configDir: process.cwd(), env: {} });
  const sink = new RecordingSink();
  try {
    for (let n = 0; n < 10; n++) fake.addNode({ name: `node-${n}`, address: `10.0.0.${n + 1}` });
    for (let i = 0; i < SERVICES; i++) fake.register({ id: `svc-${i}-1`, service: `svc-${i}`, node: `node-${i % 10}`, port: 80 });
    fake.register({ id: 'svc-5-2', service: 'svc-5', node: 'node-9', port: 80 });
    b.start(sink);
    const first = (await sink.snapshotWhere(0, (s) => s.services.size === SERVICES + 1)).snap; // + consul
    const before = [...first.services.entries()];
    const from = sink.events.length;

    fake.deregister('svc-5-2');
    const { snap } = await sink.snapshotWhere(from, (s) => s.services.get('dc1/svc-5')?.instances.length === 1);
    assert.deepEqual([...(snap.changed ?? [])], ['dc1/svc-5']);
    assert.ok(snap.services instanceof SnapshotMap, 'an O(changes) update of the previous map, not a whole-map copy');
    assert.equal(snap.services.size, SERVICES + 1);
    for (const [k, v] of before) if (k !== 'dc1/svc-5') assert.equal(snap.services.get(k), v, `${k} keeps its object`);
    // The previous snapshot is untouched.
    assert.deepEqual([...first.services.entries()], before);
    assert.equal(first.services.get('dc1/svc-5')!.instances.length, 2);

    // A removed service: the hint names it, and it is gone from the new map only.
    const from2 = sink.events.length;
    fake.deregister('svc-7-1');
    const r = await sink.snapshotWhere(from2, (s) => !s.services.has('dc1/svc-7'));
    assert.deepEqual([...(r.snap.changed ?? [])], ['dc1/svc-7']);
    assert.ok(snap.services.has('dc1/svc-7'));
  } finally {
    await b.stop();
    await fake.close();
  }
});

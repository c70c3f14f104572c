// test/integration/consul-sweep: with more Consul services than blocking slots, a change that is not a health
// change (an instance deregistered, a port changed) reaches DNS without waiting for the service's turn at a
// blocking slot (§6.1, issue 11 #5): the catalog index moves, an index sweep probes each waiting service
// (`filter` matching nothing: `[]` plus the service's own X-Consul-Index) and the one whose index moved reads at once.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerData, query } from '../helpers/dns-client.ts';
import { startServer, waitFor } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';
import { ConsulFake } from '../fakes/consul-fake.ts';

const D = 'sd.internal';
const SERVICES = 400;
const NODES = 10;

/** One blocking slot (maxConnections 5 = 1 fetch + 3 reserved + 1) for 400 watches: each waits ~400 s for its turn. */
const CFG = { maxConnections: 5, fetchConcurrency: 1, waitSeconds: 60, requestTimeoutMs: 5_000 };

function seed(f: ConsulFake): void {
  for (let n = 0; n < NODES; n++) f.addNode({ name: `node-${n}`, address: `10.0.0.${n + 1}` });
  for (let i = 0; i < SERVICES; i++) f.register({ id: `svc-${i}-1`, service: `svc-${i}`, node: `node-${i % NODES}`, port: 8000 });
  // Two instances, so a deregistration leaves the service (and the catalog body) as it was.
  f.register({ id: 'svc-250-2', service: 'svc-250', node: 'node-1', port: 8000 });
}

async function withConsul(body: (srv: TestServer, fake: ConsulFake) => Promise<void>): Promise<void> {
  const fake = await ConsulFake.start();
  let srv: TestServer | null = null;
  try {
    seed(fake);
    srv = await startServer({ backends: [{ type: 'consul', address: fake.address, ...CFG }] });
    await waitFor(() => srv!.app.store.status()[0]!.state === 'synced');
    await body(srv, fake);
  } finally {
    await srv?.stop();
    await fake.close();
  }
}

const a = async (port: number, name: string) => answerData(await query(port, name, 'A'), 'A');
const blockingHeld = (fake: ConsulFake) => fake.held;

describe('consul at more services than blocking slots (issue 11 #5, §6.1)', () => {
  it('a deregistered instance leaves DNS while the only blocking slot is busy: probed, then read at once (§6.1)', async () => {
    await withConsul(async (srv, fake) => {
      assert.deepEqual(await a(srv.port, `svc-250.service.${D}`), ['10.0.0.1', '10.0.0.2']);
      // Every blocking slot is taken by some other service's watch.
      await waitFor(() => blockingHeld(fake) >= 1);
      const from = fake.requests.length;
      fake.deregister('svc-250-2');
      await waitFor(async () => (await a(srv.port, `svc-250.service.${D}`)).length === 1);
      assert.deepEqual(await a(srv.port, `svc-250.service.${D}`), ['10.0.0.1']);
      const seen = fake.requests.slice(from).filter((r) => r.path === '/v1/health/service/svc-250');
      const probe = seen.findIndex((r) => r.query.get('filter') === 'Service.ID == ""' && !r.query.has('index'));
      assert.ok(probe >= 0, 'svc-250 was probed for its index');
      // The re-read after the probe is the poked read (index 1), not a blocking query that waited for the slot.
      const reread = seen.slice(probe + 1).find((r) => !r.query.has('filter'));
      assert.equal(reread?.query.get('index'), '1');
    });
  });

  it('a changed port reaches SRV answers while the only blocking slot is busy (§6.1, §3.2)', async () => {
    await withConsul(async (srv, fake) => {
      // svc-333 is far back in the queue for the slot (each turn holds it ~1 s).
      const srvOf = async () => answerData(await query(srv.port, `svc-333.service.${D}`, 'SRV'), 'SRV');
      assert.deepEqual(await srvOf(), [`1 1 8000 10-0-0-4.addr.${D}`]);
      await waitFor(() => blockingHeld(fake) >= 1);
      const from = fake.requests.length;
      fake.register({ id: 'svc-333-1', service: 'svc-333', node: 'node-3', port: 9090 });
      await waitFor(async () => (await srvOf())[0] === `1 1 9090 10-0-0-4.addr.${D}`);
      const reads = fake.requests.slice(from).filter((r) => r.path === '/v1/health/service/svc-333' && !r.query.has('filter'));
      assert.equal(reads[0]?.query.get('index'), '1', 'read at once (poked), not in its turn at the blocking slot');
    });
  });
});

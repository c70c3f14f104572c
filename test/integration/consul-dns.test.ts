// test/integration/consul-dns: the consul backend through real DNS (UDP on 127.0.0.1:0) against the Consul HTTP
// fake: register/deregister/health flips (§6.1, §6.4), onlyPassing, SRV weights,
// tags (§2.2, §2.3), a second datacenter (§2.1), IPv6 tagged addresses, hostnames skipped, and failures
// before (§5.4: SERVFAIL, not ready) and after the first sync (§6.3: last known answers, stale, recovery).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { startServer, waitFor } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';
import { ConsulFake } from '../fakes/consul-fake.ts';

const D = 'sd.internal';

async function withConsul(
  raw: Record<string, unknown>,
  seed: (f: ConsulFake) => void,
  body: (srv: TestServer, fake: ConsulFake) => Promise<void>,
  opts: { env?: Record<string, string>; fakeOpts?: Parameters<typeof ConsulFake.start>[0] } = {},
): Promise<void> {
  const fake = await ConsulFake.start(opts.fakeOpts);
  seed(fake);
  const srv = await startServer(
    { backends: [{ type: 'consul', address: fake.address, waitSeconds: 2, requestTimeoutMs: 500, ...raw }] },
    { env: opts.env ?? {} },
  );
  try {
    await body(srv, fake);
  } finally {
    await srv.stop();
    await fake.close();
  }
}

const a = async (port: number, name: string) => answerData(await query(port, name, 'A'), 'A');
const state = (srv: TestServer) => srv.app.store.status()[0]!.state;
const synced = (srv: TestServer) => waitFor(() => state(srv) === 'synced');

function webSeed(f: ConsulFake): void {
  f.addNode({ name: 'node-a', address: '10.0.0.1' });
  f.addNode({ name: 'node-b', address: '10.0.0.2' });
  f.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080, tags: ['v1'], weights: { Passing: 10, Warning: 1 } });
  f.register({ id: 'web-2', service: 'web', node: 'node-b', port: 8080, tags: null });
}

describe('consul over DNS: changes in Consul are answered', () => {
  // A production agent answers compact JSON; one started with -dev indents every reply (Consul's marshalJSON).
  for (const devMode of [false, true]) it(`register, deregister, and a health flip passing → warning → critical → passing (§6.1, §3.2 weights; ${devMode ? 'dev agent: indented JSON' : 'compact JSON'})`, async () => {
    await withConsul({}, webSeed, async (srv, fake) => {
      await synced(srv);
      assert.deepEqual(await a(srv.port, `web.service.${D}`), ['10.0.0.1', '10.0.0.2']);
      assert.deepEqual(answerData(await query(srv.port, `web.service.${D}`, 'SRV'), 'SRV'), [
        `1 1 8080 10-0-0-2.addr.${D}`,
        `1 10 8080 10-0-0-1.addr.${D}`,
      ]);

      fake.addNode({ name: 'node-c', address: '10.0.0.3' });
      fake.register({ id: 'web-3', service: 'web', node: 'node-c', port: 8080 });
      await waitFor(async () => (await a(srv.port, `web.service.${D}`)).length === 3);
      fake.deregister('web-3');
      await waitFor(async () => (await a(srv.port, `web.service.${D}`)).length === 2);

      fake.setCheck('web-1', 'warning'); // served, with Weights.Warning
      await waitFor(async () =>
        answerData(await query(srv.port, `web.service.${D}`, 'SRV'), 'SRV').includes(`1 1 8080 10-0-0-1.addr.${D}`),
      );
      fake.setCheck('web-1', 'critical');
      await waitFor(async () => (await a(srv.port, `web.service.${D}`)).join() === '10.0.0.2');
      fake.setCheck('web-1', 'passing');
      await waitFor(async () =>
        answerData(await query(srv.port, `web.service.${D}`, 'SRV'), 'SRV').includes(`1 10 8080 10-0-0-1.addr.${D}`),
      );
      // A service with every instance critical is NODATA, not NXDOMAIN (§5.3); a deregistered one is NXDOMAIN.
      fake.setCheck('web-1', 'critical');
      fake.setCheck('web-2', 'critical');
      await waitFor(async () => (await query(srv.port, `web.service.${D}`, 'A')).answers?.length === 0);
      assert.equal(rcode(await query(srv.port, `web.service.${D}`, 'A')), 'NOERROR');
      fake.deregister('web-1');
      fake.deregister('web-2');
      await waitFor(async () => rcode(await query(srv.port, `web.service.${D}`, 'A')) === 'NXDOMAIN');
    }, { fakeOpts: { devMode } });
  });

  it('propagation: each of 50 health flips in the fake reaches the DNS answer (§6.4)', async () => {
    // The loop's token bucket (burst 2, one token per minWatchIntervalMs) throttles a service that changes faster
    // than that, by design; flips are paced just above the interval (20 ms here) so every one is a real change.
    // How fast they arrive is the bench's to measure (npm run bench), not this test's.
    await withConsul({ minWatchIntervalMs: 20 }, webSeed, async (srv, fake) => {
      await synced(srv);
      for (let i = 0; i < 50; i++) {
        await new Promise((r) => setTimeout(r, 25));
        const down = i % 2 === 0;
        fake.setCheck('web-1', down ? 'critical' : 'passing');
        await waitFor(async () => (await a(srv.port, `web.service.${D}`)).length === (down ? 1 : 2), undefined, 1);
      }
    });
  });

  it('a watch that returns without change (idempotent write) leaves the served data and its generation alone', async () => {
    await withConsul({}, webSeed, async (srv, fake) => {
      await synced(srv);
      const gen = srv.app.store.generation;
      fake.bumpIndex('web');
      const idx = fake.raftIndex;
      // The next blocking query carrying the new index means the unchanged reply was processed.
      await waitFor(() => fake.requests.some((r) => r.path === '/v1/health/service/web' && Number(r.query.get('index')) === idx));
      assert.equal(srv.app.store.generation, gen);
      assert.deepEqual(await a(srv.port, `web.service.${D}`), ['10.0.0.1', '10.0.0.2']);
    });
  });

  it('onlyPassing: warning instances are dropped', async () => {
    await withConsul({ onlyPassing: true }, webSeed, async (srv, fake) => {
      await synced(srv);
      fake.setCheck('web-1', 'warning');
      await waitFor(async () => (await a(srv.port, `web.service.${D}`)).join() === '10.0.0.2');
      fake.setCheck('web-1', 'passing');
      await waitFor(async () => (await a(srv.port, `web.service.${D}`)).length === 2);
      const health = fake.requests.filter((r) => r.path === '/v1/health/service/web');
      assert.ok(health.length > 0 && health.every((r) => r.query.has('passing')), 'asks Consul for ?passing');
    });
  });

  it('node-level serfHealth critical (ServiceID "") drops the node\'s instances', async () => {
    await withConsul({}, webSeed, async (srv, fake) => {
      await synced(srv);
      fake.setNodeHealth('node-b', 'critical');
      await waitFor(async () => (await a(srv.port, `web.service.${D}`)).join() === '10.0.0.1');
    });
  });

  it('tags: T.N.service.D and RFC 2782 _N._T.service.D (§2.2, §2.3a); Tags null is no tag', async () => {
    await withConsul({}, webSeed, async (srv) => {
      await synced(srv);
      assert.deepEqual(await a(srv.port, `v1.web.service.${D}`), ['10.0.0.1']);
      assert.deepEqual(answerData(await query(srv.port, `_web._v1.service.${D}`, 'SRV'), 'SRV'), [`1 10 8080 10-0-0-1.addr.${D}`]);
      assert.equal(answerData(await query(srv.port, `_web._tcp.service.${D}`, 'SRV'), 'SRV').length, 2);
    });
  });

  it('datacenters: the agent dc answers unscoped and scoped; dc2 is N.service.dc2.D only', async () => {
    await withConsul(
      { datacenters: ['dc2'] },
      (f) => {
        webSeed(f);
        f.addNode({ name: 'n2', address: '10.2.0.1', dc: 'dc2' });
        f.register({ id: 'web-9', service: 'web', node: 'n2', dc: 'dc2', port: 80 });
      },
      async (srv, fake) => {
        await synced(srv);
        assert.deepEqual(await a(srv.port, `web.service.dc1.${D}`), ['10.0.0.1', '10.0.0.2']);
        assert.deepEqual(await a(srv.port, `web.service.dc2.${D}`), ['10.2.0.1']);
        assert.deepEqual(await a(srv.port, `web.service.${D}`), ['10.0.0.1', '10.0.0.2']);
        fake.setCheck('web-9', 'critical', { dc: 'dc2' });
        await waitFor(async () => (await query(srv.port, `web.service.dc2.${D}`, 'A')).answers?.length === 0);
      },
      { fakeOpts: { datacenters: ['dc2'] } },
    );
  });

  it('IPv6: lan_ipv6 tagged addresses answer AAAA; a hostname Service.Address is skipped, not fatal', async () => {
    await withConsul(
      {},
      (f) => {
        f.addNode({ name: 'v6', address: '10.0.0.6', taggedAddresses: { lan: '10.0.0.6', lan_ipv4: '10.0.0.6', lan_ipv6: '2001:db8::6', wan: '10.0.0.6' } });
        f.register({ id: 'api-1', service: 'api', node: 'v6', port: 9000 });
        f.register({ id: 'api-2', service: 'api', node: 'v6', port: 9001, address: '10.0.0.7', taggedAddresses: { lan_ipv6: { address: '2001:DB8:0::7', port: 9001 } } });
        f.register({ id: 'mig-1', service: 'microservice-in-go', node: 'v6', port: 8080, address: 'localhost', tags: ['cloud-native-go', 'v1'] });
      },
      async (srv) => {
        await synced(srv);
        assert.deepEqual(answerData(await query(srv.port, `api.service.${D}`, 'AAAA'), 'AAAA'), ['2001:db8::6', '2001:db8::7']);
        assert.deepEqual(await a(srv.port, `api.service.${D}`), ['10.0.0.6', '10.0.0.7']);
        const mig = await query(srv.port, `microservice-in-go.service.${D}`, 'A');
        assert.equal(rcode(mig), 'NOERROR');
        assert.equal(mig.answers?.length ?? 0, 0);
      },
    );
  });
});

describe('consul over DNS: Consul failing', () => {
  it('403 at start: SERVFAIL and not ready (never NXDOMAIN); a valid token then syncs', async () => {
    await withConsul(
      { token: 'stale-token', datacenter: 'dc1' },
      (f) => {
        webSeed(f);
        f.requireToken('good-token');
      },
      async (srv, fake) => {
        await waitFor(() => srv.app.store.status()[0]!.lastError?.code === 'SVCDNS_BACKEND_FORBIDDEN');
        assert.equal(state(srv), 'syncing');
        assert.equal(rcode(await query(srv.port, `web.service.${D}`, 'A')), 'SERVFAIL');
        assert.equal(rcode(await query(srv.port, `nothing.service.${D}`, 'A')), 'SERVFAIL');
        assert.equal(rcode(await query(srv.port, `web.service.dc1.${D}`, 'A')), 'SERVFAIL');
        fake.requireToken('stale-token'); // the token gets its policy
        await synced(srv);
        assert.deepEqual(await a(srv.port, `web.service.${D}`), ['10.0.0.1', '10.0.0.2']);
      },
    );
  });

  it('403 after sync: last known answers, stale; recovery when the token is valid again', async () => {
    await withConsul({ token: 't1', waitSeconds: 1 }, webSeed, async (srv, fake) => {
      await synced(srv);
      fake.requireToken('t2');
      fake.dropConnections();
      await waitFor(() => state(srv) === 'stale' && srv.app.store.status()[0]!.lastError?.code === 'SVCDNS_BACKEND_FORBIDDEN');
      assert.deepEqual(await a(srv.port, `web.service.${D}`), ['10.0.0.1', '10.0.0.2']);
      fake.requireToken('t1');
      await synced(srv);
    });
  });

  it('500 at start: SERVFAIL; after sync: last known answers, stale flag; then recovery', async () => {
    await withConsul(
      {},
      (f) => {
        webSeed(f);
        f.failNext(3, 500);
      },
      async (srv, fake) => {
        await waitFor(() => srv.app.store.status()[0]!.lastError?.code === 'SVCDNS_BACKEND_HTTP');
        assert.equal(rcode(await query(srv.port, `web.service.${D}`, 'A')), 'SERVFAIL');
        await synced(srv);
        fake.failNext(1000, 500);
        fake.dropConnections(); // the held blocking queries end; every retry now gets a 500
        await waitFor(() => state(srv) === 'stale');
        assert.deepEqual(await a(srv.port, `web.service.${D}`), ['10.0.0.1', '10.0.0.2']);
        fake.clearFailures();
        fake.setCheck('web-2', 'critical');
        await waitFor(async () => (await a(srv.port, `web.service.${D}`)).join() === '10.0.0.1');
        await synced(srv);
      },
    );
  });

  it('connection refused at start: SERVFAIL; Consul down after sync: last known answers, stale; back: fresh', async () => {
    const probe = await ConsulFake.start();
    const port = probe.port;
    await probe.close();
    const srv = await startServer({
      backends: [{ type: 'consul', address: `127.0.0.1:${port}`, waitSeconds: 1, requestTimeoutMs: 500 }],
    });
    let fake: ConsulFake | null = null;
    try {
      await waitFor(() => srv.app.store.status()[0]!.lastError?.code === 'SVCDNS_BACKEND_UNREACHABLE');
      assert.equal(rcode(await query(srv.port, `web.service.${D}`, 'A')), 'SERVFAIL');
      fake = await ConsulFake.start({}, port);
      webSeed(fake);
      await synced(srv);
      assert.deepEqual(await a(srv.port, `web.service.${D}`), ['10.0.0.1', '10.0.0.2']);

      await fake.close();
      await waitFor(() => state(srv) === 'stale');
      assert.equal(srv.app.store.status()[0]!.lastError?.code, 'SVCDNS_BACKEND_UNREACHABLE');
      assert.deepEqual(await a(srv.port, `web.service.${D}`), ['10.0.0.1', '10.0.0.2']);

      fake.setCheck('web-1', 'critical'); // changed while we could not see it
      await fake.listen(port);
      await waitFor(async () => (await a(srv.port, `web.service.${D}`)).join() === '10.0.0.2');
      await synced(srv);
    } finally {
      await srv.stop();
      await fake?.close();
    }
  });
});

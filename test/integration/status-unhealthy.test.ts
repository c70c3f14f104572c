// Integration test of the instances DNS does not serve, as the status page gets them (issue 14 #3, §6.1): the
// real app with real backends against the fakes (Consul HTTP, Kubernetes API server) and a real services file,
// read over HTTP from /v1/services. A registry change that makes an instance unhealthy moves it from `instances`
// to `unhealthy` with a stable reason; a change in the unhealthy list alone moves the store generation (the page
// refetches) and keeps the cached DNS answers of the name (§6.4: only what changed is dropped).

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { answerData, query } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';
import { endpointSlice, legacyEndpoints } from '../fakes/kube-apiserver-fake.ts';
import { withConsulServer, withKubeServer } from '../helpers/registry-server.ts';

const ADMIN = { admin: { listen: '127.0.0.1:0' } };

interface Unhealthy {
  address: string;
  name: string | null;
  reason: string;
  backend: string;
}

async function getJson(srv: TestServer, p: string): Promise<any> {
  const a = srv.app.adminAddress;
  assert.ok(a, 'admin server is running');
  const res = await fetch(`http://${a.host}:${a.port}${p}`);
  assert.equal(res.status, 200);
  return res.json();
}

/** One name of /v1/services (scope null: the unscoped view): its served addresses and its unhealthy list. */
async function serviceOf(srv: TestServer, name: string, scope: string | null): Promise<{ served: string[]; unhealthy: Unhealthy[]; generation: number } | null> {
  const body = await getJson(srv, '/v1/services');
  const s = body.services.find((x: any) => x.name === name && x.scope === scope);
  return s ? { served: s.instances.map((i: any) => i.address), unhealthy: s.unhealthy, generation: body.generation } : null;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

describe('/v1/services: unhealthy instances and why (issue 14 #3, §6.1)', () => {
  it('Consul: a failing check, a node check and maintenance, each with its check as the reason; a change to critical moves the instance', async () => {
    await withConsulServer({}, (fake) => {
      fake.addNode({ name: 'node-a', address: '10.0.0.1' });
      fake.addNode({ name: 'node-b', address: '10.0.0.2' });
      fake.addNode({ name: 'node-c', address: '10.0.0.3' });
      fake.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080 });
      fake.register({ id: 'web-2', service: 'web', node: 'node-b', port: 8080, checks: [{ status: 'critical' }] });
      fake.register({ id: 'web-3', service: 'web', node: 'node-c', port: 8080 });
    }, async (s, fake) => {
      const web = () => serviceOf(s, 'web', 'dc1');
      await waitFor(async () => same((await web())?.served, ['10.0.0.1', '10.0.0.3']));
      assert.deepEqual((await web())!.unhealthy, [{ address: '10.0.0.2', name: 'web-2', reason: 'check service:web-2 critical', backend: 'reg' }]);
      // The unscoped view (the agent's datacenter) lists them too.
      assert.deepEqual((await serviceOf(s, 'web', null))!.unhealthy.map((u) => u.name), ['web-2']);

      // The node of web-3 fails: web-3 moves from the served instances to the unhealthy ones, and DNS drops it.
      fake.setNodeHealth('node-c', 'critical');
      await waitFor(async () => same((await web())?.served, ['10.0.0.1']));
      assert.deepEqual((await web())!.unhealthy, [
        { address: '10.0.0.2', name: 'web-2', reason: 'check service:web-2 critical', backend: 'reg' },
        { address: '10.0.0.3', name: 'web-3', reason: 'node check serfHealth critical', backend: 'reg' },
      ]);
      assert.deepEqual(answerData(await query(s.port, 'web.service.dc1.sd.internal', 'A')), ['10.0.0.1']);

      // web-2 goes into maintenance mode instead: served the same, listed with the new reason.
      fake.register({ id: 'web-2', service: 'web', node: 'node-b', port: 8080, checks: [{ id: '_service_maintenance:web-2', status: 'critical' }] });
      await waitFor(async () => (await web())?.unhealthy[0]?.reason === 'maintenance');
    });
  });

  for (const workers of [1, 2]) {
    it(`workers: ${workers}: a change in the unhealthy list alone moves the generation and keeps the cached DNS answers of the name (§6.4)`, async () => {
      await withConsulServer({ workers }, (fake) => {
        fake.addNode({ name: 'node-a', address: '10.0.0.1' });
        fake.addNode({ name: 'node-b', address: '10.0.0.2' });
        fake.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080 });
        fake.register({ id: 'web-2', service: 'web', node: 'node-b', port: 8080, checks: [{ status: 'critical' }] });
      }, async (s, fake) => {
        const web = () => serviceOf(s, 'web', 'dc1');
        await waitFor(async () => (await web())?.unhealthy.length === 1);
        const name = 'web.service.dc1.sd.internal';
        // Fresh sockets (distinct source ports): with workers the kernel spreads them over every worker, so each
        // one answers, and caches, the name.
        const ask = () => Promise.all(Array.from({ length: 20 }, () => query(s.port, name, 'A')));
        for (const r of await ask()) assert.deepEqual(answerData(r), ['10.0.0.1']);
        for (const r of await ask()) assert.deepEqual(answerData(r), ['10.0.0.1']); // cached now, in every thread
        const gen0 = (await web())!.generation;
        const status0 = await getJson(s, '/v1/status');

        fake.register({ id: 'web-2', service: 'web', node: 'node-b', port: 8080, checks: [{ id: '_service_maintenance:web-2', status: 'critical' }] });
        await waitFor(async () => (await web())?.unhealthy[0]?.reason === 'maintenance');
        assert.ok((await web())!.generation > gen0, 'the generation moved: the status page fetches /v1/services again');
        for (const r of await ask()) assert.deepEqual(answerData(r), ['10.0.0.1']);
        const status1 = await getJson(s, '/v1/status');
        assert.equal(status1.cache.misses, status0.cache.misses, 'every answer came from the cache: nothing it read changed');
        assert.equal(status1.cache.hits, status0.cache.hits + 20);
        // The change is observed once as propagation, like any other the backend received.
        const count = (st: any) => st.propagation.find((p: any) => p.backend === 'reg')?.count ?? 0;
        await waitFor(async () => count(await getJson(s, '/v1/status')) === count(status0) + 1);

        // A change DNS does read still drops it: web-2 recovers.
        fake.setCheck('web-2', 'passing', { checkId: '_service_maintenance:web-2' });
        await waitFor(async () => (await ask()).every((r) => answerData(r).length === 2));
        assert.deepEqual((await web())!.unhealthy, []);
      });
    });
  }

  it('Kubernetes: not ready and terminating endpoints (EndpointSlice) and notReadyAddresses (legacy Endpoints), named by their Pod', async () => {
    const slice = (endpoints: Parameters<typeof endpointSlice>[0]['endpoints']) =>
      endpointSlice({ namespace: 'default', name: 'web-abc12', service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints });
    await withKubeServer(
      { name: 'k8s' },
      (fake) => fake.apply(slice([{ addresses: ['10.0.0.1'], ready: true, pod: 'web-a' }, { addresses: ['10.0.0.2'], ready: false, serving: false, terminating: false, pod: 'web-b' }])),
      async (s, fake) => {
        const web = () => serviceOf(s, 'web', 'default');
        await waitFor(async () => same((await web())?.served, ['10.0.0.1']));
        assert.deepEqual((await web())!.unhealthy, [{ address: '10.0.0.2', name: 'web-b', reason: 'not ready', backend: 'k8s' }]);

        // A rollout: web-a terminates (still serving), web-b becomes ready.
        fake.apply(slice([{ addresses: ['10.0.0.1'], ready: false, serving: true, terminating: true, pod: 'web-a' }, { addresses: ['10.0.0.2'], ready: true, pod: 'web-b' }]));
        await waitFor(async () => same((await web())?.served, ['10.0.0.2']));
        assert.deepEqual((await web())!.unhealthy, [{ address: '10.0.0.1', name: 'web-a', reason: 'terminating (serving: true)', backend: 'k8s' }]);
        assert.deepEqual(answerData(await query(s.port, 'web.service.default.sd.internal', 'A')), ['10.0.0.2']);
      },
    );

    // The legacy Endpoints API: notReadyAddresses.
    await withKubeServer(
      { name: 'k8s', api: 'endpoints' },
      (legacy) => legacy.apply(legacyEndpoints({ namespace: 'default', name: 'db', subsets: [{ addresses: ['10.1.0.1'], notReadyAddresses: ['10.1.0.2'], ports: [{ name: 'pg', port: 5432 }] }] })),
      async (s) => {
        await waitFor(async () => same((await serviceOf(s, 'db', 'default'))?.served, ['10.1.0.1']));
        const u = (await serviceOf(s, 'db', 'default'))!.unhealthy;
        assert.deepEqual(u.map((x) => [x.address, x.reason]), [['10.1.0.2', 'not ready']]);
      },
    );
  });

  it('file: `healthy: false` and a failing TCP check, each with its reason, never the probe\'s message', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-unhealthy-file-'));
    let srv: TestServer | null = null;
    // A port nobody listens on: bind one, note it, close it (connect is refused at once).
    const closed = await new Promise<number>((resolve) => {
      const l = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (l.address() as net.AddressInfo).port;
        l.close(() => resolve(p));
      });
    });
    try {
      await writeFile(
        path.join(dir, 'services.yaml'),
        `services:\n  - name: web\n    instances:\n` +
          `      - { id: web-1, address: 10.0.0.1, port: 8080 }\n` +
          `      - { id: web-2, address: 10.0.0.2, port: 8080, healthy: false }\n` +
          `      - { id: web-3, address: 127.0.0.1, port: ${closed}, check: { tcp: ${closed}, intervalMs: 200, timeoutMs: 2000 } }\n`,
      );
      srv = await startServer({ ...ADMIN, backends: [{ type: 'file', name: 'static', path: 'services.yaml', debounceMs: 0 }] }, { configDir: dir, extra: { serveAdmin: true } });
      const s = srv;
      const web = (await waitFor(() => serviceOf(s, 'web', 'default')))!;
      assert.deepEqual(web.served, ['10.0.0.1']);
      assert.deepEqual(web.unhealthy, [
        { address: '10.0.0.2', name: 'web-2', reason: 'healthy: false', backend: 'static' },
        { address: '127.0.0.1', name: 'web-3', reason: 'tcp check critical', backend: 'static' },
      ]);
    } finally {
      await srv?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

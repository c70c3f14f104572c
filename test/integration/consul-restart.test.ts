// test/integration/consul-restart: a Consul agent restarted with other data answers the very X-Consul-Index svcdns
// holds; after any failure every watch must re-read without blocking and apply what it gets (issue 10 #13, as
// Consul's blocking.mdx advises for index resets), so answers and /readyz follow the new agent (§6.3, §6.4).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';
import { ConsulFake } from '../fakes/consul-fake.ts';

const D = 'sd.internal';
/** Both agents end on this index: the one the watches hold when the first goes away. */
const SAME_INDEX = 500;

function before(f: ConsulFake): void {
  f.addNode({ name: 'node-a', address: '10.0.0.1' });
  f.addNode({ name: 'node-d', address: '10.0.0.5' });
  f.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080 });
  f.register({ id: 'db-1', service: 'db', node: 'node-d', port: 5432 });
}

function after(f: ConsulFake): void {
  f.addNode({ name: 'consul-server-dc1', address: '127.0.0.1' });
  f.register({ id: 'consul', service: 'consul', node: 'consul-server-dc1', port: 8300, tags: [], checks: [] });
  f.addNode({ name: 'node-b', address: '10.0.0.2' });
  f.addNode({ name: 'node-c', address: '10.0.0.9' });
  f.register({ id: 'web-2', service: 'web', node: 'node-b', port: 8080 }); // web moved
  f.register({ id: 'api-1', service: 'api', node: 'node-c', port: 9000 }); // api is new, db is gone
}

const a = async (srv: TestServer, name: string) => answerData(await query(srv.port, name, 'A'), 'A');

/** Start svcdns on `fake` (seeded with before(), every index SAME_INDEX) and wait until every watch blocks on it. */
async function startBlocked(fake: ConsulFake): Promise<TestServer> {
  before(fake);
  fake.forceIndex(SAME_INDEX);
  // waitSeconds 1: the held queries come back often with the same index, which must still not hide the change.
  const srv = await startServer({ backends: [{ type: 'consul', address: fake.address, waitSeconds: 1, requestTimeoutMs: 2000, minWatchIntervalMs: 0 }] });
  try {
    await waitFor(() => srv.app.store.status()[0]!.state === 'synced');
    assert.deepEqual(await a(srv, `web.service.${D}`), ['10.0.0.1']);
    assert.deepEqual(await a(srv, `db.service.${D}`), ['10.0.0.5']);
    await waitFor(() => fake.requests.some((r) => r.path === '/v1/health/service/db' && r.query.get('index') === String(SAME_INDEX)));
    return srv;
  } catch (err) {
    await srv.stop();
    throw err;
  }
}

/** The answers and /readyz follow the new agent, and blocking then resumes on it. */
async function followsNewAgent(srv: TestServer, agent: ConsulFake): Promise<void> {
  await waitFor(async () => (await a(srv, `web.service.${D}`)).join() === '10.0.0.2');
  await waitFor(async () => rcode(await query(srv.port, `db.service.${D}`, 'A')) === 'NXDOMAIN');
  await waitFor(async () => (await a(srv, `api.service.${D}`)).join() === '10.0.0.9');
  await waitFor(() => srv.app.store.status()[0]!.state === 'synced');
  const from = agent.requests.length;
  await waitFor(() => agent.requests.slice(from).some((r) => r.path === '/v1/health/service/web' && r.query.get('index') === String(SAME_INDEX)));
}

test('Consul restarted with other data and the same X-Consul-Index, after an outage svcdns saw: applied (issue 10 #13, §6.3)', { timeout: 120_000 }, async () => {
  const first = await ConsulFake.start();
  let second: ConsulFake | null = null;
  let srv: TestServer | null = null;
  try {
    srv = await startBlocked(first);
    const server = srv;
    const port = first.port;
    await first.close(); // held queries are cut, new ones refused
    await waitFor(() => server.app.store.status()[0]!.state === 'stale');
    second = await ConsulFake.start({}, port);
    after(second);
    second.forceIndex(SAME_INDEX);
    await followsNewAgent(srv, second);
  } finally {
    await srv?.stop();
    await second?.close();
    await first.close();
  }
});

test('Consul restarted in no time (held blocking queries cut, nothing refused) with the same X-Consul-Index: applied (issue 10 #13)', { timeout: 120_000 }, async () => {
  const fake = await ConsulFake.start();
  let srv: TestServer | null = null;
  try {
    srv = await startBlocked(fake);
    fake.restartWith(SAME_INDEX, after);
    await followsNewAgent(srv, fake);
  } finally {
    await srv?.stop();
    await fake.close();
  }
});

test('after an HTTP 500, the next read is a fresh one whose result is applied though the index did not move (issue 10 #13)', { timeout: 120_000 }, async () => {
  const fake = await ConsulFake.start();
  let srv: TestServer | null = null;
  try {
    srv = await startBlocked(fake);
    // Other data at the same index, connections kept: the held queries come back with it as "no change".
    fake.restartWith(SAME_INDEX, after, { cutConnections: false });
    fake.failNext(1, 500, /^\/v1\/catalog\/services$/);
    fake.failNext(1, 500, /^\/v1\/health\/service\/web$/);
    await followsNewAgent(srv, fake);
  } finally {
    await srv?.stop();
    await fake.close();
  }
});

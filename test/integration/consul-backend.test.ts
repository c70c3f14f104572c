// test/integration/consul-backend: the consul backend against the Consul HTTP fake, observed at the sink
// (snapshots and typed errors): blocking-query rules, watches following the catalog, failures and recovery.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { configSchema } from '../../src/backends/consul/config.ts';
import { ConsulBackend } from '../../src/backends/consul/consul.ts';
import { ConsulFake, type CheckStatus } from '../fakes/consul-fake.ts';
import { waitFor } from '../helpers/server.ts';
import { RecordingSink as BaseSink } from '../helpers/recording-sink.ts';

class RecordingSink extends BaseSink {
  /** `address:port` of the served instances of `key` in the latest snapshot ([] before the first). */
  addrs(key: string): string[] {
    return (this.snapshots.at(-1)?.services.get(key)?.instances ?? []).map((i) => `${i.address}:${i.ports[0]?.port ?? ''}`).sort();
  }
}


function backend(raw: Record<string, unknown>, env: Record<string, string> = {}) {
  const cfg = configSchema.parse({ type: 'consul', waitSeconds: 2, requestTimeoutMs: 500, minWatchIntervalMs: 0, ...raw });
  return new ConsulBackend(cfg, { logger: pino({ level: 'silent' }), configDir: process.cwd(), env });
}

async function setup(raw: Record<string, unknown> = {}) {
  const fake = await ConsulFake.start();
  fake.addNode({ name: 'node-a', address: '10.0.0.1' });
  fake.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080, tags: ['v1'] });
  const b = backend({ address: fake.address, ...raw });
  const sink = new RecordingSink();
  b.start(sink);
  return { fake, b, sink, async stop() { await b.stop(); await fake.close(); } };
}

test('first full sync: agent datacenter is the default scope; stale reads by default', async () => {
  const t = await setup();
  try {
    await waitFor(() => t.sink.last);
    assert.equal(t.sink.last!.defaultScope, 'dc1');
    assert.deepEqual(t.sink.addrs('dc1/web'), ['10.0.0.1:8080']);
    assert.ok(t.sink.last!.services.has('dc1/consul'));
    assert.ok(t.b.ownsScope(null) && t.b.ownsScope('dc1') && !t.b.ownsScope('dc9'));
    const health = t.fake.requests.filter((r) => r.path === '/v1/health/service/web');
    assert.ok(health.length >= 1);
    assert.ok(health.every((r) => r.query.has('stale')), 'stale by default');
  } finally {
    await t.stop();
  }
});

test('watches follow the catalog: register, deregister, a service that disappears', async () => {
  const t = await setup();
  try {
    await waitFor(() => t.sink.last);
    t.fake.register({ id: 'api-1', service: 'api', node: 'node-a', port: 9000 });
    await waitFor(() => t.sink.addrs('dc1/api').length === 1);
    t.fake.addNode({ name: 'node-b', address: '10.0.0.2' });
    t.fake.register({ id: 'api-2', service: 'api', node: 'node-b', port: 9000 });
    await waitFor(() => t.sink.addrs('dc1/api').length === 2);
    t.fake.deregister('api-1');
    await waitFor(() => t.sink.addrs('dc1/api').join() === '10.0.0.2:9000');
    t.fake.deregister('api-2');
    await waitFor(() => !t.sink.last!.services.has('dc1/api'));
    await waitFor(() => t.b.stats.watches === 2); // consul + web: the api watch stopped
  } finally {
    await t.stop();
  }
});

test('unchanged services keep their object; a watch that returns without change emits nothing', async () => {
  const t = await setup();
  try {
    await waitFor(() => t.sink.last);
    const web = t.sink.last!.services.get('dc1/web');
    const n = t.sink.snapshots.length;
    t.fake.bumpIndex('web'); // idempotent write: new index, same data
    const idx = t.fake.raftIndex;
    await waitFor(() => t.fake.requests.some((r) => r.path === '/v1/health/service/web' && Number(r.query.get('index')) === idx));
    assert.equal(t.sink.snapshots.length, n);
    t.fake.register({ id: 'api-1', service: 'api', node: 'node-a', port: 9000 });
    await waitFor(() => t.sink.last!.services.has('dc1/api'));
    assert.equal(t.sink.last!.services.get('dc1/web'), web, 'same Service object for an unchanged service');
  } finally {
    await t.stop();
  }
});

test('index going backwards resets to 0 once, then blocks again (blocking.mdx rules)', async () => {
  const t = await setup({ waitSeconds: 1 });
  try {
    await waitFor(() => t.sink.last);
    const before = t.b.stats.zeroIndexRequests;
    t.fake.setIndex(3); // snapshot restore: every index drops below what the watches hold
    // After `wait` the blocked queries return index 3 < held index → reset; the next request has no index.
    await waitFor(() => t.b.stats.zeroIndexRequests >= before + 3); // catalog, consul, web
    t.fake.setCheck('web-1', 'critical');
    await waitFor(() => t.sink.addrs('dc1/web').length === 0);
    // Never two index-0 requests in a row for one path.
    for (const path of ['/v1/catalog/services', '/v1/health/service/web']) {
      const seq = t.fake.requests.filter((r) => r.path === path).map((r) => Number(r.query.get('index') ?? '0'));
      for (let i = 1; i < seq.length; i++) assert.ok(!(seq[i] === 0 && seq[i - 1] === 0), `${path}: ${seq.join(',')}`);
    }
  } finally {
    await t.stop();
  }
});

test('rate limit: a server that always returns at once is not hammered', async () => {
  const fake = await ConsulFake.start();
  fake.addNode({ name: 'node-a', address: '10.0.0.1' });
  fake.register({ id: 'web-1', service: 'web', node: 'node-a', port: 80 });
  const b = backend({ address: fake.address, minWatchIntervalMs: 200 });
  const sink = new RecordingSink();
  b.start(sink);
  try {
    await waitFor(() => sink.last);
    const t0 = performance.now();
    const n0 = fake.requests.filter((r) => r.path === '/v1/health/service/web').length;
    // Every write bumps the index: each blocking query returns at once.
    const timer = setInterval(() => fake.bumpIndex('web'), 5);
    await new Promise((r) => setTimeout(r, 1000));
    clearInterval(timer);
    const n = fake.requests.filter((r) => r.path === '/v1/health/service/web').length - n0;
    const secs = (performance.now() - t0) / 1000;
    // Token bucket: burst 2 + one per 200 ms ≈ 7 in 1 s; without it, ~200.
    assert.ok(n <= 2 + Math.ceil(secs * 5) + 1, `requests in ${secs.toFixed(2)} s: ${n}`);
  } finally {
    await b.stop();
    await fake.close();
  }
});

test('health: node-level serfHealth critical drops every instance on the node; warning kept unless onlyPassing', async () => {
  const t = await setup();
  try {
    await waitFor(() => t.sink.last);
    t.fake.setNodeHealth('node-a', 'critical');
    await waitFor(() => t.sink.addrs('dc1/web').length === 0);
    t.fake.setNodeHealth('node-a', 'passing');
    await waitFor(() => t.sink.addrs('dc1/web').length === 1);
    t.fake.setCheck('web-1', 'warning');
    const idx = t.fake.raftIndex;
    // The next request carrying the new index means the warning reply was processed.
    await waitFor(() => t.fake.requests.some((r) => r.path === '/v1/health/service/web' && Number(r.query.get('index')) === idx));
    assert.equal(t.sink.addrs('dc1/web').length, 1);
  } finally {
    await t.stop();
  }
});

test('403: FORBIDDEN names the endpoint and token source, never the token; no snapshot', async () => {
  const fake = await ConsulFake.start();
  fake.requireToken('good-token');
  const b = backend({ address: fake.address, datacenter: 'dc1' }, { CONSUL_HTTP_TOKEN: 'wrong-token' });
  const sink = new RecordingSink();
  b.start(sink);
  try {
    const err = (await waitFor(() => sink.errors.find((e) => e.code === 'SVCDNS_BACKEND_FORBIDDEN')))!;
    assert.equal(err.details['endpoint'], '/v1/catalog/services');
    assert.equal(err.details['tokenSource'], 'env');
    assert.ok(!err.message.includes('wrong-token') && !JSON.stringify(err.details).includes('wrong-token'));
    assert.equal(sink.snapshots.length, 0);
  } finally {
    await b.stop();
    await fake.close();
  }
});

test('403 on /v1/agent/self (token without agent:read, no `datacenter` set) names that endpoint; any scope stays SERVFAIL', async () => {
  const fake = await ConsulFake.start();
  fake.requireToken('good-token');
  const b = backend({ address: fake.address, token: 'other' });
  const sink = new RecordingSink();
  b.start(sink);
  try {
    const err = (await waitFor(() => sink.errors.find((e) => e.code === 'SVCDNS_BACKEND_FORBIDDEN')))!;
    assert.equal(err.details['endpoint'], '/v1/agent/self');
    assert.equal(err.details['tokenSource'], 'config');
    assert.ok(b.ownsScope('dc1') && b.ownsScope('anything'), 'agent dc unknown yet: every scope could be ours');
    fake.requireToken('other');
    await waitFor(() => sink.last);
    assert.ok(b.ownsScope('dc1') && !b.ownsScope('anything'));
  } finally {
    await b.stop();
    await fake.close();
  }
});

test('connection refused at start: UNREACHABLE, no snapshot; then Consul comes up and the backend syncs', async () => {
  const fake = await ConsulFake.start();
  const port = fake.port;
  await fake.close();
  const b = backend({ address: `127.0.0.1:${port}` });
  const sink = new RecordingSink();
  b.start(sink);
  try {
    await waitFor(() => sink.errors.find((e) => e.code === 'SVCDNS_BACKEND_UNREACHABLE'));
    assert.equal(sink.snapshots.length, 0);
    await fake.listen(port);
    await waitFor(() => sink.last);
  } finally {
    await b.stop();
    await fake.close();
  }
});

test('hung agent: TIMEOUT after wait + wait/16 + requestTimeoutMs; data kept', async () => {
  const t = await setup({ waitSeconds: 1, requestTimeoutMs: 300 });
  try {
    await waitFor(() => t.sink.last);
    const n = t.sink.snapshots.length;
    t.fake.setHang(true);
    t.fake.dropConnections(); // held queries end; every retry now hangs
    const err = await waitFor(() => t.sink.errors.find((e) => e.code === 'SVCDNS_BACKEND_TIMEOUT'));
    assert.ok(err);
    assert.equal(t.sink.snapshots.length, n, 'no new (empty) snapshot while failing');
    t.fake.setHang(false);
    await waitFor(() => t.sink.snapshots.length > n); // recovery re-emits to clear the stale mark
    assert.deepEqual(t.sink.addrs('dc1/web'), ['10.0.0.1:8080']);
  } finally {
    await t.stop();
  }
});

test('datacenters: a second datacenter is mirrored as its own scope via ?dc=', async () => {
  const fake = await ConsulFake.start({ datacenters: ['dc2'] });
  fake.addNode({ name: 'n2', address: '10.2.0.1', dc: 'dc2' });
  fake.register({ id: 'web-2', service: 'web', node: 'n2', dc: 'dc2', port: 80 });
  const b = backend({ address: fake.address, datacenters: ['dc2'] });
  const sink = new RecordingSink();
  b.start(sink);
  try {
    await waitFor(() => sink.last);
    assert.deepEqual(sink.addrs('dc2/web'), ['10.2.0.1:80']);
    assert.equal(sink.last!.services.has('dc1/web'), false);
    assert.ok(fake.requests.some((r) => r.path === '/v1/health/service/web' && r.query.get('dc') === 'dc2'));
    assert.ok(b.ownsScope('dc2'));
  } finally {
    await b.stop();
    await fake.close();
  }
});

/**
 * 40 services on two nodes (even ones on node-a 10.0.0.1, odd ones on node-b 10.0.0.2; no Service.Address, so each
 * answers its node's address), port 80. 24 sockets - 4 fetch - 3 (catalog, hint, nodes) = 17 blocking slots for 41
 * watches, waitSeconds 60: a watch waiting its turn would see a change only after ~29 s.
 */
async function moreWatchesThanSlots() {
  const fake = await ConsulFake.start();
  fake.addNode({ name: 'node-a', address: '10.0.0.1' });
  fake.addNode({ name: 'node-b', address: '10.0.0.2' });
  for (let i = 0; i < 40; i++) fake.register({ id: `s${i}`, service: `svc-${i}`, node: i % 2 ? 'node-b' : 'node-a', port: 80 });
  const b = backend({ address: fake.address, maxConnections: 24, fetchConcurrency: 4, waitSeconds: 60 });
  const sink = new RecordingSink();
  b.start(sink);
  return { fake, b, sink };
}

test('more watches than blocking slots: a health-state hint reads changed services at once; hints stop when not needed', async () => {
  const { fake, b, sink } = await moreWatchesThanSlots();
  try {
    await waitFor(() => sink.last);
    assert.equal(b.stats.blockingSlots, 17);
    await waitFor(() => b.stats.hints === 1);
    assert.ok(fake.peakConnections <= 24, `peak ${fake.peakConnections}`);
    // Let the hint watch take its first reading before changing anything.
    await waitFor(() => fake.requests.some((r) => r.path === '/v1/health/state/any' && r.query.has('index')));
    assert.equal(fake.requests.find((r) => r.path === '/v1/health/state/any')!.query.get('filter'), 'Status != "passing"');
    // Each change must come through the hint: the service it names is poked (read at once, or left to Consul when
    // its watch holds a blocking query), exactly once, and no other service is.
    const flip = async (i: number, status: CheckStatus, want: number) => {
      const p0 = b.hintPokes;
      fake.setCheck(`s${i}`, status);
      await waitFor(() => sink.addrs(`dc1/svc-${i}`).length === want && b.hintPokes > p0);
      assert.equal(b.hintPokes - p0, 1, `svc-${i} ${status}: one poke`);
    };
    for (const i of [3, 17, 38]) await flip(i, 'critical', 0);
    // Back to passing: the check leaves the hint's list, which pokes as well (and only that one: 3 and 38 stay).
    await flip(17, 'passing', 1);
    await flip(38, 'warning', 1); // served (onlyPassing is false): a listed check that changes status
    await flip(38, 'critical', 0);
    const p0 = b.hintPokes;
    fake.setNodeHealth('node-b', 'critical'); // node-level: every odd service
    await waitFor(() => sink.addrs('dc1/svc-1').length === 0 && sink.addrs('dc1/svc-39').length === 0 && b.hintPokes - p0 >= 20);
    assert.equal(b.hintPokes - p0, 20, 'a node-level check pokes the 20 services on its node, and no other');
    for (let i = 0; i < 30; i++) fake.deregister(`s${i}`);
    await waitFor(() => b.stats.hints === 0 && b.stats.nodeWatches === 0);
  } finally {
    await b.stop();
    await fake.close();
  }
});

test('more watches than blocking slots: a node re-registered with a new address is answered at once, not at its services\' turn', async () => {
  const { fake, b, sink } = await moreWatchesThanSlots();
  try {
    await waitFor(() => sink.last);
    await waitFor(() => b.stats.nodeWatches === 1);
    // The node list's first reply is the baseline; change nothing before its watch blocks on that index.
    await waitFor(() => fake.requests.some((r) => r.path === '/v1/catalog/nodes' && r.query.has('index')));
    const p0 = b.nodePokes;
    fake.setNodeAddress('node-b', '10.0.0.9');
    // Every odd service answers the new address: all 20 on node-b were poked, none on node-a.
    await waitFor(() => Array.from({ length: 20 }, (_, k) => sink.addrs(`dc1/svc-${2 * k + 1}`)).every((a) => a.length === 1 && a[0] === '10.0.0.9:80'));
    assert.equal(b.nodePokes - p0, 20, 'the 20 services on node-b, and no other');
    assert.deepEqual(sink.addrs('dc1/svc-0'), ['10.0.0.1:80']);
    // The same address again changes nothing, so pokes nobody.
    fake.setNodeAddress('node-b', '10.0.0.9');
    fake.setNodeAddress('node-a', '10.0.0.7');
    await waitFor(() => sink.addrs('dc1/svc-0')[0] === '10.0.0.7:80' && b.nodePokes - p0 >= 40);
    assert.equal(b.nodePokes - p0, 40, 'node-a\'s 20 services; node-b unchanged');
  } finally {
    await b.stop();
    await fake.close();
  }
});

// test/unit/consul-translate: /v1/health/service replies (shapes of recorded real replies) → healthy instances
// (§6.1 health and weights, §2.2 tags, addresses and tagged addresses, hostnames skipped).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeService, sameServed, translateHealth, signature } from '../../src/backends/consul/translate.ts';

const serf = (node: string, status = 'passing') => ({
  Node: node,
  CheckID: 'serfHealth',
  Name: 'Serf Health Status',
  Status: status,
  Notes: '',
  Output: 'Agent alive and reachable',
  ServiceID: '',
  ServiceName: '',
  ServiceTags: [],
  Definition: {},
  CreateIndex: 9,
  ModifyIndex: 9,
});
const svcCheck = (node: string, id: string, status: string) => ({
  Node: node,
  CheckID: `service:${id}`,
  Name: `Service '${id}' check`,
  Status: status,
  Notes: '',
  Output: '',
  ServiceID: id,
  ServiceName: id,
  ServiceTags: [],
});

function entry(o: {
  node?: string;
  nodeAddr?: string;
  nodeTagged?: Record<string, string>;
  id?: string;
  addr?: string;
  port?: number;
  tags?: string[] | null;
  weights?: { Passing: number; Warning: number };
  svcTagged?: Record<string, { address: string; port: number }>;
  checks?: unknown[];
}) {
  const node = o.node ?? 'node-a';
  const id = o.id ?? 'web-1';
  return {
    Node: {
      ID: '4f3777fd-01da-afbd-235b-8f946911ed41',
      Node: node,
      Address: o.nodeAddr ?? '10.0.0.1',
      Datacenter: 'dc1',
      TaggedAddresses: o.nodeTagged ?? { lan: o.nodeAddr ?? '10.0.0.1', wan: o.nodeAddr ?? '10.0.0.1' },
      Meta: { 'consul-network-segment': '' },
      CreateIndex: 9,
      ModifyIndex: 10,
    },
    Service: {
      ID: id,
      Service: 'web',
      Tags: o.tags === undefined ? [] : o.tags,
      Address: o.addr ?? '',
      ...(o.svcTagged ? { TaggedAddresses: o.svcTagged } : {}),
      Meta: null,
      Port: o.port ?? 8080,
      ...(o.weights ? { Weights: o.weights } : {}),
      EnableTagOverride: false,
      CreateIndex: 407,
      ModifyIndex: 407,
    },
    Checks: o.checks ?? [serf(node), svcCheck(node, id, 'passing')],
  };
}

const warnings: string[] = [];
const opts = (onlyPassing = false) => ({ name: 'web', scope: 'dc1', onlyPassing, warn: (k: string) => void warnings.push(k) });

test('§6.1: critical on the node-level serfHealth (ServiceID "") or a service check drops the instance', () => {
  const r = translateHealth(
    [
      entry({ node: 'a', nodeAddr: '10.0.0.1', id: 'w1', checks: [serf('a', 'critical'), svcCheck('a', 'w1', 'passing')] }),
      entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2', checks: [svcCheck('b', 'w2', 'critical'), serf('b')] }),
      entry({ node: 'c', nodeAddr: '10.0.0.3', id: 'w3' }),
      entry({ node: 'd', nodeAddr: '10.0.0.4', id: 'w4', checks: [serf('d', 'maintenance')] }),
    ],
    opts(),
  );
  assert.deepEqual(r.instances.map((i) => i.address), ['10.0.0.3']);
  assert.deepEqual(r.nodes.sort(), ['a', 'b', 'c', 'd']);
});

test('§6.1: warning is served (weight Weights.Warning) unless onlyPassing', () => {
  const body = [
    entry({ weights: { Passing: 10, Warning: 1 }, checks: [serf('node-a'), svcCheck('node-a', 'web-1', 'warning')] }),
    entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2', weights: { Passing: 10, Warning: 1 } }),
  ];
  const r = translateHealth(body, opts());
  assert.deepEqual(r.instances.map((i) => `${i.address}/${i.weight}`), ['10.0.0.1/1', '10.0.0.2/10']);
  const p = translateHealth(body, opts(true));
  assert.deepEqual(p.instances.map((i) => `${i.address}/${i.weight}`), ['10.0.0.2/10']);
});

test('§3.2: weights default to 1 and are never 0', () => {
  const r = translateHealth(
    [entry({}), entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2', weights: { Passing: 5, Warning: 0 }, checks: [svcCheck('b', 'w2', 'warning')] })],
    opts(),
  );
  assert.deepEqual(r.instances.map((i) => i.weight), [1, 1]);
});

test('addresses: Service.Address overrides Node.Address; empty falls back; port and tcp', () => {
  const r = translateHealth([entry({ addr: '192.168.1.5', port: 4567 }), entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2' })], opts());
  assert.deepEqual(
    r.instances.map((i) => [i.address, i.family, i.ports]),
    [
      ['10.0.0.2', 4, [{ name: null, port: 8080, protocol: 'tcp' }]],
      ['192.168.1.5', 4, [{ name: null, port: 4567, protocol: 'tcp' }]],
    ],
  );
});

test('IPv6: node lan_ipv6 and service lan_ipv6 tagged addresses add AAAA instances (canonical text)', () => {
  const r = translateHealth(
    [
      entry({ nodeTagged: { lan: '10.0.0.1', lan_ipv4: '10.0.0.1', lan_ipv6: '2001:DB8:0:0:0:0:0:1', wan: '198.18.0.1' } }),
      entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2', addr: '10.9.9.9', port: 80, svcTagged: { lan_ipv6: { address: '2001:db8::9', port: 8443 }, wan: { address: '198.18.1.2', port: 80 } } }),
    ],
    opts(),
  );
  assert.deepEqual(
    r.instances.map((i) => `${i.family} ${i.address} ${i.ports[0]!.port}`).sort(),
    ['4 10.0.0.1 8080', '4 10.9.9.9 80', '6 2001:db8::1 8080', '6 2001:db8::9 8443'],
  );
});

test('a hostname as Service.Address is skipped with a warning key, not a crash', () => {
  warnings.length = 0;
  const r = translateHealth([entry({ addr: 'localhost' }), entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2' })], opts());
  assert.deepEqual(r.instances.map((i) => i.address), ['10.0.0.2']);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /localhost/);
});

test('§2.2 tags: Tags null → none; lowercased; non-label tags skipped', () => {
  const r = translateHealth(
    [entry({ tags: null }), entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2', tags: ['Primary', 'v1.2', 'a=b', 'cloud-native-go'] })],
    opts(),
  );
  assert.deepEqual(r.instances.map((i) => i.tags), [[], ['cloud-native-go', 'primary']]);
});

test('malformed entries are counted and skipped; a non-array is empty', () => {
  const r = translateHealth([null, { Node: {} }, entry({})], opts());
  assert.equal(r.malformed, 2);
  assert.equal(r.instances.length, 1);
  assert.equal(translateHealth({}, opts()).instances.length, 0);
});

test('signature is order-independent of Consul entry order and changes with weight', () => {
  const a = translateHealth([entry({}), entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2' })], opts());
  const b = translateHealth([entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2' }), entry({})], opts());
  assert.equal(signature(a.instances, undefined), signature(b.instances, undefined));
  const c = translateHealth([entry({ weights: { Passing: 3, Warning: 1 } }), entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2' })], opts());
  assert.notEqual(signature(a.instances, undefined), signature(c.instances, undefined));
});

// Consul's maintenance mode (`consul maint -enable [-service=ID]`) registers these critical checks.
const maintenance = (node: string, serviceId: string | null) => ({
  Node: node,
  CheckID: serviceId === null ? '_node_maintenance' : `_service_maintenance:${serviceId}`,
  Name: serviceId === null ? 'Node Maintenance Mode' : 'Service Maintenance Mode',
  Status: 'critical',
  Notes: 'kernel upgrade',
  Output: '',
  ServiceID: serviceId ?? '',
  ServiceName: serviceId === null ? '' : 'web',
  ServiceTags: [],
});

test('§6.1 Service.unhealthy: each instance not served is listed with the check that keeps it out (status page)', () => {
  const body = [
    entry({ node: 'a', nodeAddr: '10.0.0.1', id: 'w1', checks: [serf('a', 'critical'), svcCheck('a', 'w1', 'passing')] }),
    entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2', checks: [serf('b'), svcCheck('b', 'w2', 'critical')] }),
    entry({ node: 'c', nodeAddr: '10.0.0.3', id: 'w3' }),
    entry({ node: 'd', nodeAddr: '10.0.0.4', id: 'w4', checks: [serf('d'), maintenance('d', 'w4')] }),
    entry({ node: 'e', nodeAddr: '10.0.0.5', id: 'w5', checks: [maintenance('e', null), serf('e')] }),
    entry({ node: 'f', nodeAddr: '10.0.0.6', id: 'w6', addr: 'web.example.com' }),
    entry({ node: 'g', nodeAddr: '10.0.0.7', id: 'w7', checks: [serf('g'), svcCheck('g', 'w7', 'warning')] }),
  ];
  const r = translateHealth(body, opts());
  assert.deepEqual(r.instances.map((i) => i.address), ['10.0.0.3', '10.0.0.7']);
  assert.deepEqual(r.unhealthy, [
    { address: '10.0.0.1', name: 'w1', reason: 'node check serfHealth critical' },
    { address: '10.0.0.2', name: 'w2', reason: 'check service:w2 critical' },
    { address: '10.0.0.4', name: 'w4', reason: 'maintenance' },
    { address: '10.0.0.5', name: 'w5', reason: 'node maintenance' },
    { address: 'web.example.com', name: 'w6', reason: 'address is not an IP' },
  ]);
  // onlyPassing: a warning keeps the instance out too, and says so.
  const p = translateHealth(body, opts(true));
  assert.deepEqual(p.unhealthy!.find((u) => u.name === 'w7'), { address: '10.0.0.7', name: 'w7', reason: 'check service:w7 warning (onlyPassing)' });
  // All healthy: no list at all (nothing is allocated for healthy instances).
  assert.equal(translateHealth([entry({})], opts()).unhealthy, undefined);
});

test('Service.unhealthy reasons are stable: a check whose Output changes gives the same reason string object', () => {
  const run = (output: string) =>
    translateHealth([entry({ id: 'w1', checks: [serf('node-a'), { ...svcCheck('node-a', 'w1', 'critical'), Output: output }] })], opts()).unhealthy!;
  const a = run('HTTP GET http://10.0.0.1:8080/health: 503 Service Unavailable Output: at 12:00:01');
  const b = run('HTTP GET http://10.0.0.1:8080/health: 503 Service Unavailable Output: at 12:00:11');
  assert.equal(a[0]!.reason, 'check service:w1 critical');
  assert.equal(a[0]!.reason, b[0]!.reason);
  assert.deepEqual(a, b);
  assert.equal(signature([], undefined, [], a), signature([], undefined, [], b));
});

test('makeService/sameServed: a change in the unhealthy list alone is a new Service that keeps the served arrays', () => {
  const healthy = entry({ node: 'a', nodeAddr: '10.0.0.1', id: 'w1' });
  const before = translateHealth([healthy, entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2', checks: [serf('b'), svcCheck('b', 'w2', 'critical')] })], opts());
  const prev = makeService('web', 'dc1', before.instances, undefined, before.knownTags, before.unhealthy);
  // The same reply again: unchanged (the caller keeps prev).
  const same = translateHealth([healthy, entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2', checks: [serf('b'), svcCheck('b', 'w2', 'critical')] })], opts());
  assert.equal(sameServed(prev, same.instances, undefined, same.knownTags, same.unhealthy), true);
  // w2 goes into maintenance instead: served the same, listed differently.
  const after = translateHealth([healthy, entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2', checks: [serf('b'), maintenance('b', 'w2')] })], opts());
  assert.equal(sameServed(prev, after.instances, undefined, after.knownTags, after.unhealthy), false);
  const next = makeService('web', 'dc1', after.instances, undefined, after.knownTags, after.unhealthy, prev);
  assert.notEqual(next, prev);
  assert.equal(next.instances, prev.instances);
  assert.equal(next.knownTags, prev.knownTags);
  assert.deepEqual(next.unhealthy, [{ address: '10.0.0.2', name: 'w2', reason: 'maintenance' }]);
  // It recovers: no unhealthy list, served data changed.
  const healed = translateHealth([healthy, entry({ node: 'b', nodeAddr: '10.0.0.2', id: 'w2' })], opts());
  const last = makeService('web', 'dc1', healed.instances, undefined, healed.knownTags, healed.unhealthy, next);
  assert.equal(last.unhealthy, undefined);
  assert.deepEqual(last.instances.map((i) => i.address), ['10.0.0.1', '10.0.0.2']);
});

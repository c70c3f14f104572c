// Unit: the store's name indexes behind empty non-terminals and tag existence (dns-behaviour.md §2.2, §2.5):
// merged known tags per name, and per view how many services carry each tag, kept exact across changes.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serviceKey, type Instance, type Service } from '../../src/model/service.ts';
import { Store } from '../../src/store/store.ts';

const inst = (address: string, tags: string[] = [], portName: string | null = null): Instance => ({
  address,
  family: 4,
  ports: [{ name: portName, port: 80, protocol: 'tcp' }],
  weight: 1,
  tags,
});
const svc = (name: string, instances: Instance[], o: { scope?: string; knownTags?: string[] } = {}): Service => ({
  name,
  scope: o.scope ?? 'default',
  instances,
  ...(o.knownTags ? { knownTags: o.knownTags } : {}),
});
const apply = (store: Store, backend: string, services: Service[], defaultScope: string | null = 'default') => {
  if (!store.status().some((b) => b.name === backend)) store.register(backend, 'test', () => true);
  store.apply(backend, { services: new Map(services.map((s) => [serviceKey(s.scope, s.name), s])), defaultScope });
};

describe('store name indexes (§2.2, §2.5)', () => {
  it('§2.2 a merged name knows the tags and port names of healthy instances and the backends\' knownTags', () => {
    const store = new Store();
    apply(store, 'a', [svc('web', [inst('10.0.0.1', ['primary'], 'http')], { knownTags: ['retired'] })]);
    apply(store, 'b', [svc('web', [inst('10.0.0.2', ['canary'])])]);
    assert.deepEqual([...store.service(null, 'web')!.tags].sort(), ['canary', 'http', 'primary', 'retired']);
    assert.deepEqual([...store.service('default', 'web')!.tags].sort(), ['canary', 'http', 'primary', 'retired']);
  });

  it('§2.5 hasTag counts services per view and forgets a tag when its last carrier goes', () => {
    const store = new Store();
    apply(store, 'a', [
      svc('web', [inst('10.0.0.1', ['primary'])]),
      svc('api', [inst('10.0.0.2', ['primary'])]),
      svc('web', [inst('10.1.0.1', ['blue'])], { scope: 'staging' }),
    ]);
    assert.ok(store.hasTag(null, 'primary') && store.hasTag('default', 'primary'));
    assert.ok(store.hasTag('staging', 'blue') && !store.hasTag(null, 'blue') && !store.hasTag('staging', 'primary'));
    // web loses the tag: api still carries it.
    apply(store, 'a', [svc('web', [inst('10.0.0.1')]), svc('api', [inst('10.0.0.2', ['primary'])]), svc('web', [inst('10.1.0.1', ['blue'])], { scope: 'staging' })]);
    assert.ok(store.hasTag(null, 'primary'));
    // api goes: nobody carries it.
    apply(store, 'a', [svc('web', [inst('10.0.0.1')]), svc('web', [inst('10.1.0.1', ['blue'])], { scope: 'staging' })]);
    assert.ok(!store.hasTag(null, 'primary') && !store.hasTag('default', 'primary'));
    // A tag only an unhealthy instance carries still counts.
    apply(store, 'a', [svc('web', [], { knownTags: ['retired'] })]);
    assert.ok(store.hasTag(null, 'retired'));
    assert.ok(!store.hasTag('staging', 'blue'), 'the staging service is gone');
    store.unregister('a');
    assert.ok(!store.hasTag(null, 'retired'));
  });

  it('§2.5 hasServices: the unscoped view and each scope', () => {
    const store = new Store();
    assert.equal(store.hasServices(null), false);
    apply(store, 'a', [svc('web', [], { scope: 'prod' })], null);
    assert.equal(store.hasServices(null), false, 'no default scope: nothing unscoped');
    assert.equal(store.hasServices('prod'), true);
    apply(store, 'a', [svc('web', [], { scope: 'prod' })], 'prod');
    assert.equal(store.hasServices(null), true);
    apply(store, 'a', [], 'prod');
    assert.equal(store.hasServices(null), false);
    assert.equal(store.hasServices('prod'), false);
  });

  it('§2.5 a default-scope change moves the tags of the unscoped view', () => {
    const store = new Store();
    const services = [svc('web', [inst('10.0.0.1', ['x'])], { scope: 'one' }), svc('web', [inst('10.0.0.2', ['y'])], { scope: 'two' })];
    apply(store, 'a', services, 'one');
    assert.ok(store.hasTag(null, 'x') && !store.hasTag(null, 'y'));
    apply(store, 'a', services, 'two');
    assert.ok(!store.hasTag(null, 'x') && store.hasTag(null, 'y'));
  });
});

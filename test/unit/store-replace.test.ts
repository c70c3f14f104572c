// Unit: Store.replace — a reload's make-before-break switch (§5.4). A registered backend's identity and data are
// swapped for a new instance's in one call: no state in between is observable (never unknown, never syncing),
// only what differs is recomputed, and a worker replica follows with the same result.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serviceKey, type ScopeClaim, type Service } from '../../src/model/service.ts';
import { StoreReplica, StoreReplicator, type ReplicaMessage } from '../../src/store/replication.ts';
import { Store, type StoreEvent } from '../../src/store/store.ts';
import { inst, svc } from '../helpers/stack.ts';

const snap = (services: Service[], defaultScope: string | null = 'default', changed?: string[]) => ({
  services: new Map(services.map((s) => [serviceKey(s.scope, s.name), s])),
  defaultScope,
  ...(changed ? { changed: new Set(changed) } : {}),
});

describe('Store.replace (§5.4 make-before-break)', () => {
  it('swaps identity and data in one step: synced throughout, the new data diffed against the old', () => {
    const store = new Store();
    const claimA: ScopeClaim = { unscoped: true, any: false, scopes: ['dc1'] };
    store.register('consul', 'consul', (s) => s === null || s === 'dc1', () => claimA);
    const web = svc('web', [inst('10.0.0.1', [80])], { scope: 'dc1' });
    const api = svc('api', [inst('10.0.0.5', [80])], { scope: 'dc1' });
    store.apply('consul', snap([web, api], 'dc1'));
    const generations: number[] = [];
    store.onChange((g) => generations.push(g));
    const events: StoreEvent['kind'][] = [];
    store.observe((e) => events.push(e.kind));

    const claimB: ScopeClaim = { unscoped: true, any: false, scopes: ['dc2'] };
    const web2 = svc('web', [inst('10.0.0.2', [80])], { scope: 'dc2' });
    // A stale `changed` hint from the new instance must not limit the diff (it is relative to its own past).
    store.replace('consul', 'consul', (s) => s === null || s === 'dc2', () => claimB, snap([web2], 'dc2', []));

    assert.deepEqual(events, ['replace', 'apply']);
    assert.equal(generations.length, 1, 'one visible change');
    const st = store.status();
    assert.equal(st.length, 1);
    assert.equal(st[0]!.state, 'synced');
    assert.deepEqual(store.claimOf('consul'), claimB);
    assert.equal(store.pending('dc2'), false);
    assert.deepEqual(store.service(null, 'web')!.instances.map((i) => i.address), ['10.0.0.2']);
    assert.equal(store.service('dc1', 'web'), undefined, 'the old data is gone');
    assert.equal(store.service(null, 'api'), undefined);
    assert.equal(store.hasAddress(null, '10.0.0.1'), false);
    assert.equal(store.hasAddress(null, '10.0.0.2'), true);
  });

  it('a stale backend replaced by a synced instance is synced', () => {
    const store = new Store();
    store.register('f', 'file', () => true);
    store.apply('f', snap([svc('web', [inst('10.0.0.1', [80])])]));
    store.fail('f', { code: 'SVCDNS_BACKEND_BAD_DATA', message: 'bad file' });
    assert.equal(store.status()[0]!.state, 'stale');
    store.replace('f', 'file', () => true, undefined, snap([svc('web', [inst('10.0.0.3', [80])])]));
    assert.equal(store.status()[0]!.state, 'synced');
    assert.equal(store.status()[0]!.lastError, null);
  });

  it('a replica applying the batch of that turn ends in the same state, with the new claim', () => {
    const main = new Store();
    main.register('k8s', 'kubernetes', () => true, () => ({ unscoped: true, any: true, scopes: [] }));
    main.apply('k8s', snap([svc('web', [inst('10.0.0.1', [80])]), svc('db', [inst('10.0.0.9', [5432])])]));
    const rep = new StoreReplicator(main);
    const replica = new StoreReplica(new Store());
    for (const m of structuredClone(rep.initial())) replica.apply(m);
    const batch: ReplicaMessage[] = [];
    rep.subscribe((m) => batch.push(structuredClone(m)));

    const claim: ScopeClaim = { unscoped: true, any: false, scopes: ['default'] };
    main.replace('k8s', 'kubernetes', (s) => s === null || s === 'default', () => claim, snap([svc('web', [inst('10.0.0.2', [80])])]));
    assert.deepEqual(batch.map((m) => m.t), ['replace', 'apply']);
    for (const m of batch) replica.apply(m);

    assert.deepEqual(replica.store.service(null, 'web')!.instances.map((i) => i.address), ['10.0.0.2']);
    assert.equal(replica.store.service(null, 'db'), undefined);
    assert.equal(replica.store.status()[0]!.state, 'synced');
    // The replica's scope test follows the new claim (the old one claimed every scope).
    const owns = replica.store.ownsScopeOf('k8s')!;
    assert.equal(owns('default'), true);
    assert.equal(owns('prod'), false);
  });
});

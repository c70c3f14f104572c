// Unit: a replica store follows the main store exactly (workers), shipping deltas after the first snapshot.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serviceKey, type Service } from '../../src/model/service.ts';
import { StoreReplica, StoreReplicator, type ReplicaMessage } from '../../src/store/replication.ts';
import { Store } from '../../src/store/store.ts';
import { inst, svc } from '../helpers/stack.ts';

const snap = (services: Service[], defaultScope: string | null = 'default', changed?: string[]) => ({
  services: new Map(services.map((s) => [serviceKey(s.scope, s.name), s])),
  defaultScope,
  ...(changed ? { changed: new Set(changed) } : {}),
});
const clone = <T>(v: T): T => structuredClone(v);

describe('store replication', () => {
  it('a replica started late catches up from initial(), then follows deltas; claims carry §5.4', () => {
    const main = new Store();
    let claim = { unscoped: true, any: true, scopes: [] as string[] }; // agent's datacenter not known yet
    main.register('consul', 'consul', (s) => s === null || claim.any || claim.scopes.includes(s), () => claim);
    const rep = new StoreReplicator(main);
    const replica = new StoreReplica(new Store());
    for (const m of rep.initial()) replica.apply(clone(m));
    const sent: ReplicaMessage[] = [];
    rep.subscribe((m) => {
      sent.push(m);
      replica.apply(clone(m));
    });
    assert.equal(replica.store.pending('dc2'), true, 'before the agent dc is known every scope is claimed');
    // The backend learns its datacenter; the next report carries the narrower claim to the replicas.
    claim = { unscoped: true, any: false, scopes: ['dc1'] };
    main.fail('consul', { code: 'SVCDNS_BACKEND_HTTP', message: 'catalog 500' });
    assert.equal(replica.store.pending('dc1'), true);
    assert.equal(replica.store.pending(null), true);
    assert.equal(replica.store.pending('dc2'), false, 'dc2 is not claimed any more');

    const web = svc('web', [inst('10.0.0.1', [80])], { scope: 'dc1' });
    const api = svc('api', [inst('10.0.0.2', [80])], { scope: 'dc1' });
    main.apply('consul', snap([web, api], 'dc1'));
    assert.equal(replica.store.pending('dc1'), false);
    assert.deepEqual(replica.store.service(null, 'web')!.instances.map((i) => i.address), ['10.0.0.1']);

    // No hint: the main thread diffs by identity and ships only `web`.
    const web2 = svc('web', [inst('10.0.0.9', [80])], { scope: 'dc1' });
    main.apply('consul', snap([web2, api], 'dc1'));
    const last = sent[sent.length - 1]!;
    assert.equal(last.t, 'apply');
    assert.deepEqual(last.t === 'apply' && last.changes?.map(([k]) => k), [serviceKey('dc1', 'web')]);
    assert.deepEqual(replica.store.service(null, 'web')!.instances.map((i) => i.address), ['10.0.0.9']);
    assert.equal(replica.store.service(null, 'api')!.instances.length, 1);

    // Removal, stale marking and unregister follow too.
    main.apply('consul', snap([web2], 'dc1'));
    assert.equal(replica.store.service(null, 'api'), undefined);
    main.fail('consul', { code: 'SVCDNS_BACKEND_UNREACHABLE', message: 'down' });
    assert.equal(replica.store.status()[0]!.state, 'stale');
    main.unregister('consul');
    assert.equal(replica.store.status().length, 0);
    assert.equal(replica.store.service(null, 'web'), undefined);
  });

  it('a backend registered without a claim is pending for every scope in the replica (the safe side)', () => {
    const main = new Store();
    main.register('file', 'file', () => true);
    const replica = new StoreReplica(new Store());
    for (const m of new StoreReplicator(main).initial()) replica.apply(clone(m));
    assert.equal(replica.store.pending('whatever'), true);
  });

  it('with the changed-keys hint only the named services travel, and identity is kept for the rest', () => {
    const main = new Store();
    main.register('k8s', 'kubernetes', () => true, () => ({ unscoped: true, any: true, scopes: [] }));
    const rep = new StoreReplicator(main);
    const replica = new StoreReplica(new Store());
    for (const m of rep.initial()) replica.apply(clone(m));
    const sent: ReplicaMessage[] = [];
    rep.subscribe((m) => {
      sent.push(m);
      replica.apply(clone(m));
    });
    const a = svc('a', [inst('10.0.0.1', [80])]);
    const b = svc('b', [inst('10.0.0.2', [80])]);
    main.apply('k8s', snap([a, b]));
    const mergedB = replica.store.service(null, 'b');
    const a2 = svc('a', [inst('10.0.0.3', [80])]);
    main.apply('k8s', snap([a2, b], 'default', [serviceKey('default', 'a')]));
    const last = sent[sent.length - 1]!;
    assert.ok(last.t === 'apply' && last.changes?.length === 1);
    assert.deepEqual(replica.store.service(null, 'a')!.instances.map((i) => i.address), ['10.0.0.3']);
    assert.equal(replica.store.service(null, 'b'), mergedB, 'untouched service not re-merged in the replica');
  });

  it('issue 11 #3: one change among 10k services is O(1) in the store, the message and the replica (Map entries written, not time)', () => {
    const main = new Store();
    main.register('k8s', 'kubernetes', () => true, () => ({ unscoped: true, any: true, scopes: [] }));
    const all = new Map<string, Service>();
    for (let i = 0; i < 10_000; i++) all.set(serviceKey('default', `s${i}`), svc(`s${i}`, [inst(`10.1.${i >> 8}.${i & 255}`, [80])]));
    main.apply('k8s', { services: all, defaultScope: 'default' });
    const rep = new StoreReplicator(main);
    const replica = new StoreReplica(new Store());
    for (const m of rep.initial()) replica.apply(clone(m));
    const sent: ReplicaMessage[] = [];
    rep.subscribe((m) => sent.push(clone(m)));
    // Count every Map entry written while one change travels: a whole-map copy writes 10k of them.
    const set = Map.prototype.set;
    let writes = 0;
    const counting = function (this: Map<unknown, unknown>, k: unknown, v: unknown) {
      writes++;
      return set.call(this, k, v);
    };
    for (let round = 0; round < 3; round++) {
      const key = serviceKey('default', `s${round * 7}`);
      const next = new Map(all); // the backend's own new snapshot: outside what is counted
      next.set(key, svc(`s${round * 7}`, [inst(`10.2.0.${round + 1}`, [80])]));
      const before = sent.length;
      writes = 0;
      Map.prototype.set = counting;
      try {
        main.apply('k8s', { services: next, defaultScope: 'default', changed: new Set([key]) });
      } finally {
        Map.prototype.set = set;
      }
      const storeWrites = writes;
      const ms = sent.slice(before);
      assert.equal(ms.length, 1);
      const m = ms[0]!;
      assert.ok(m.t === 'apply' && m.services === undefined && m.changes?.length === 1, 'the message carries the one service');
      writes = 0;
      Map.prototype.set = counting;
      try {
        replica.apply(m);
      } finally {
        Map.prototype.set = set;
      }
      assert.ok(storeWrites < 50, `main store wrote ${storeWrites} Map entries for one change`);
      assert.ok(writes < 50, `replica wrote ${writes} Map entries for one change`);
      assert.deepEqual(replica.store.service(null, `s${round * 7}`)!.instances.map((i) => i.address), [`10.2.0.${round + 1}`]);
      assert.equal(replica.store.service(null, 's9999')!.instances[0]!.address, '10.1.39.15', 'the rest is still there');
      assert.equal(replica.store.status()[0]!.services, 10_000);
      assert.equal(replica.store.status()[0]!.instances, 10_000);
    }
    // A removal travels as one entry too, and the replica forgets it.
    const gone = new Map(all);
    gone.delete(serviceKey('default', 's1'));
    main.apply('k8s', { services: gone, defaultScope: 'default', changed: new Set([serviceKey('default', 's1')]) });
    replica.apply(sent[sent.length - 1]!);
    assert.equal(replica.store.service(null, 's1'), undefined);
    assert.equal(replica.store.status()[0]!.services, 9_999);
  });
});

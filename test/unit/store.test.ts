// Unit: the store's merge (§6.2), readiness (§5.4), staleness (§6.3) and incremental cost.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serviceKey, type Service } from '../../src/model/service.ts';
import { Store } from '../../src/store/store.ts';
import { inst, svc } from '../helpers/stack.ts';

const snap = (services: Service[], defaultScope: string | null = 'default') => ({
  services: new Map(services.map((s) => [serviceKey(s.scope, s.name), s])),
  defaultScope,
});

describe('store', () => {
  it('§5.4 pending until first snapshot, per scope the backend can own', () => {
    const st = new Store();
    st.register('k8s', 'kubernetes', (scope) => scope === 'prod');
    assert.equal(st.pending('prod'), true);
    assert.equal(st.pending(null), false);
    st.apply('k8s', snap([], 'prod'));
    assert.equal(st.pending('prod'), false);
    assert.equal(st.anyPending, false);
  });

  it('§6.2 merges the default scopes of several backends into the unscoped view, de-duplicated', () => {
    const st = new Store();
    st.register('a', 'file', () => true);
    st.register('b', 'consul', () => true);
    st.apply('a', snap([svc('web', [inst('10.0.0.1', [80]), inst('10.0.0.2', [80])])]));
    st.apply('b', snap([svc('web', [inst('10.0.0.2', [80]), inst('10.0.0.3', [80])], { scope: 'dc1' })], 'dc1'));
    assert.deepEqual(st.service(null, 'web')!.instances.map((i) => i.address), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    assert.deepEqual([...st.service(null, 'web')!.backends].sort(), ['a', 'b']);
    assert.equal(st.service('dc1', 'web')!.instances.length, 2);
    assert.ok(st.hasAddress(null, '10.0.0.3') && st.hasAddress('dc1', '10.0.0.3') && !st.hasAddress('default', '10.0.0.3'));
    st.apply('b', snap([], 'dc1'));
    assert.equal(st.service(null, 'web')!.instances.length, 2);
    assert.equal(st.hasAddress(null, '10.0.0.3'), false);
    assert.equal(st.hasScope('dc1'), false);
  });

  it('only services whose object changed are re-merged; an identical snapshot does not bump the generation', () => {
    const st = new Store();
    st.register('a', 'file', () => true);
    const web = svc('web', [inst('10.0.0.1', [80])]);
    const api = svc('api', [inst('10.0.0.2', [80])]);
    st.apply('a', snap([web, api]));
    const g = st.generation;
    const mergedApi = st.service(null, 'api');
    st.apply('a', snap([web, api]));
    assert.equal(st.generation, g);
    st.apply('a', snap([svc('web', [inst('10.0.0.9', [80])]), api]));
    assert.equal(st.generation, g + 1);
    assert.equal(st.service(null, 'api'), mergedApi, 'untouched service keeps its merged object');
    assert.equal(st.service(null, 'web')!.instances[0]!.address, '10.0.0.9');
  });

  it('§6.3 fail after sync → stale, data kept; fail before sync stays syncing; next snapshot → synced', () => {
    const st = new Store();
    st.register('a', 'consul', () => true);
    st.fail('a', { code: 'SVCDNS_BACKEND_FORBIDDEN', message: '403' });
    assert.equal(st.status()[0]!.state, 'syncing');
    assert.equal(st.status()[0]!.lastError!.code, 'SVCDNS_BACKEND_FORBIDDEN');
    st.apply('a', snap([svc('web', [inst('10.0.0.1', [80])])]));
    st.fail('a', { code: 'SVCDNS_BACKEND_UNREACHABLE', message: 'refused' });
    assert.equal(st.status()[0]!.state, 'stale');
    assert.equal(st.service(null, 'web')!.instances.length, 1);
    st.apply('a', snap([svc('web', [inst('10.0.0.1', [80])])]));
    assert.equal(st.status()[0]!.state, 'synced');
    assert.equal(st.status()[0]!.lastError, null);
  });

  it('unregister drops what the backend served', () => {
    const st = new Store();
    st.register('a', 'file', () => true);
    st.apply('a', snap([svc('web', [inst('10.0.0.1', [80])])]));
    st.unregister('a');
    assert.equal(st.service(null, 'web'), undefined);
    assert.equal(st.status().length, 0);
  });
});

describe('store: the changed-keys hint', () => {
  it('with `changed`, only the named keys are merged and instance counts stay right', () => {
    const st = new Store();
    st.register('a', 'consul', () => true);
    const web = svc('web', [inst('10.0.0.1', [80])]);
    const api = svc('api', [inst('10.0.0.2', [80]), inst('10.0.0.3', [80])]);
    const m1 = new Map([[serviceKey('default', 'web'), web], [serviceKey('default', 'api'), api]]);
    st.apply('a', { services: m1, defaultScope: 'default' });
    assert.equal(st.status()[0]!.instances, 3);
    const web2 = svc('web', [inst('10.0.0.7', [80]), inst('10.0.0.8', [80])]);
    const m2 = new Map(m1).set(serviceKey('default', 'web'), web2);
    st.apply('a', { services: m2, defaultScope: 'default', changed: new Set([serviceKey('default', 'web')]) });
    assert.deepEqual(st.service(null, 'web')!.instances.map((i) => i.address), ['10.0.0.7', '10.0.0.8']);
    assert.equal(st.status()[0]!.instances, 4);
    assert.equal(st.hasAddress(null, '10.0.0.1'), false);
    const m3 = new Map(m2);
    m3.delete(serviceKey('default', 'api'));
    st.apply('a', { services: m3, defaultScope: 'default', changed: new Set([serviceKey('default', 'api')]) });
    assert.equal(st.service(null, 'api'), undefined);
    assert.equal(st.status()[0]!.instances, 2);
  });
});

describe('store: compact indexes (issue 11 item 4)', () => {
  it('§3.8 §2.4 the addresses of one service share one immutable PTR list; removals update both views and their change keys', () => {
    const st = new Store();
    st.register('a', 'kubernetes', () => true);
    const web = svc('web', [inst('10.0.0.1', ['http:80']), inst('10.0.0.2', ['http:80'])]);
    const api = svc('api', [inst('10.0.1.1', ['http:80'])], { scope: 'prod' });
    st.apply('a', snap([web, api]));
    const list = st.servicesAt('10.0.0.1');
    assert.deepEqual(list.map((m) => m.scope), [null, 'default'], 'unscoped view first (§3.8)');
    assert.equal(st.servicesAt('10.0.0.2'), list, 'one list for the service, not one per address');
    assert.ok(st.hasAddress(null, '10.0.0.1') && st.hasAddress('default', '10.0.0.1') && !st.hasAddress('prod', '10.0.0.1'));
    assert.ok(st.hasAddress('prod', '10.0.1.1') && !st.hasAddress(null, '10.0.1.1'));
    assert.equal(st.service(null, 'web')!.tags, st.service('prod', 'api')!.tags, 'equal tag sets are one set');

    const g = st.generation;
    st.apply('a', snap([svc('web', [inst('10.0.0.2', ['http:80'])]), api]));
    assert.deepEqual(list.map((m) => m.scope), [null, 'default'], 'a list handed out is never mutated');
    assert.deepEqual(st.servicesAt('10.0.0.1'), []);
    assert.ok(!st.hasAddress(null, '10.0.0.1') && !st.hasAddress('default', '10.0.0.1'));
    assert.ok(st.hasAddress(null, '10.0.0.2') && st.hasAddress('default', '10.0.0.2'));
    const keys = st.changedSince(g)!;
    for (const k of ['a:/10.0.0.1', 'a:default/10.0.0.1', 'p:10.0.0.1']) assert.ok(keys.has(k), `${k} in ${[...keys].join(' ')}`);
    assert.ok(!keys.has('a:/10.0.0.2') && !keys.has('a:default/10.0.0.2'), 'an address that stays in the view is not a change');

    // The default scope moves: the unscoped view loses web; its `.addr` names go, the scoped ones stay.
    const g2 = st.generation;
    st.apply('a', snap([svc('web', [inst('10.0.0.2', ['http:80'])]), api], 'prod'));
    assert.ok(!st.hasAddress(null, '10.0.0.2') && st.hasAddress('default', '10.0.0.2') && st.hasAddress(null, '10.0.1.1'));
    assert.ok(st.hasReverseBelow('0.0.10.in-addr.arpa') && st.hasReverseBelow('10.in-addr.arpa'));
    const moved = st.changedSince(g2)!;
    assert.ok(moved.has('a:/10.0.0.2') && moved.has('a:/10.0.1.1') && !moved.has('a:default/10.0.0.2'), [...moved].join(' '));
    st.unregister('a');
    assert.ok(!st.hasReverseBelow('0.0.10.in-addr.arpa') && !st.hasReverseBelow('10.in-addr.arpa') && !st.hasReverseBelow('in-addr.arpa'));
  });
});

describe('store: staged first sync (issue 11 item 2)', () => {
  const many = (n: number) => Array.from({ length: n }, (_, k) => svc(`svc-${k}`, [inst(`10.${(k >> 8) & 255}.${k & 255}.1`, ['http:80'])]));

  it('§5.4 a big first snapshot is folded over several turns: SERVFAIL-pending until the last service is in, never NXDOMAIN, then synced in one bump', async () => {
    const st = new Store({ stageFirstSyncOver: 100, stageTurnBudgetMs: 0 });
    st.register('k8s', 'kubernetes', () => true);
    const g0 = st.generation;
    const bumps: number[] = [];
    const off = st.onChange((g) => bumps.push(g));
    try {
      st.apply('k8s', snap(many(1000)));
      // The call returned after one short stretch: the backend is still syncing, so a name not folded yet is
      // pending (the answer layer gives SERVFAIL, §5.4) and the generation has not moved (cached answers hold).
      assert.equal(st.status()[0]!.state, 'syncing');
      assert.equal(st.pending(null), true);
      assert.equal(st.pending('default'), true);
      assert.equal(st.service(null, 'svc-999'), undefined);
      assert.equal(st.generation, g0);
      assert.equal(st.status()[0]!.instances, 1000);
      const folded = st.service(null, 'svc-0')!; // folded names answer the new data, whole (scoped and unscoped)
      assert.deepEqual(folded.instances.map((i) => i.address), ['10.0.0.1']);
      assert.ok(st.service('default', 'svc-0') && st.hasAddress(null, '10.0.0.1') && st.hasAddress('default', '10.0.0.1'));
      // A PTR could list only the services folded so far: none until the end (SERVFAIL while pending, §3.8, §5.4).
      assert.deepEqual(st.servicesAt('10.0.0.1'), []);
      assert.equal(st.hasReverseBelow('0.0.10.in-addr.arpa'), false);

      const deadline = Date.now() + 20_000;
      while (st.status()[0]!.state !== 'synced' && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      assert.equal(st.status()[0]!.state, 'synced');
      assert.deepEqual(bumps, [g0 + 1], 'one generation for the whole sync');
      assert.equal(st.changedSince(g0), null, 'every cached answer (SERVFAILs) goes');
      assert.equal(st.anyPending, false);
      assert.equal(st.hasReverseBelow('0.0.10.in-addr.arpa'), true);
      for (const k of [0, 1, 500, 998, 999]) {
        assert.deepEqual(st.service(null, `svc-${k}`)!.instances.map((i) => i.address), [`10.${(k >> 8) & 255}.${k & 255}.1`]);
        assert.equal(st.servicesAt(`10.${(k >> 8) & 255}.${k & 255}.1`).length, 2);
      }
    } finally {
      off();
      st.finishStaging();
    }
  });

  it('a change arriving while a first sync is staged completes it first, in the same call: nothing merges against half-folded indexes', () => {
    const st = new Store({ stageFirstSyncOver: 100, stageTurnBudgetMs: 0 });
    st.register('a', 'kubernetes', () => true);
    st.register('b', 'file', () => true);
    st.apply('a', snap(many(1000)));
    assert.equal(st.service(null, 'svc-999'), undefined, 'still staged');
    st.apply('b', snap([svc('svc-999', [inst('10.9.9.9', ['http:80'])])]));
    assert.deepEqual(st.status().map((b) => b.state), ['synced', 'synced']);
    assert.deepEqual(st.service(null, 'svc-999')!.instances.map((i) => i.address).sort(), ['10.3.231.1', '10.9.9.9'], '§6.2 merged with the staged data');
    assert.deepEqual([...st.service(null, 'svc-999')!.backends].sort(), ['a', 'b']);
    // Below the threshold a first snapshot is one synchronous step, as before.
    const small = new Store({ stageFirstSyncOver: 100 });
    small.register('a', 'file', () => true);
    small.apply('a', snap(many(99)));
    assert.equal(small.status()[0]!.state, 'synced');
    assert.ok(small.service(null, 'svc-98'));
  });
});

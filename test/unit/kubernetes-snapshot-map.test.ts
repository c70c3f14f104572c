// backends/kubernetes/snapshot-map: the immutable ReadonlyMap behind every Kubernetes snapshot (issue 11 item 3):
// an updated copy shares what it did not change and never alters the version it came from (the store diffs the
// previous snapshot's map against the new one, model/service.ts ServiceSnapshot).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SnapshotMap } from '../../src/backends/snapshot-map.ts';

describe('SnapshotMap', () => {
  it('with() returns a new version and leaves every earlier version exactly as it was', () => {
    const reference = new Map<string, number>();
    const versions: [SnapshotMap<number>, Map<string, number>][] = [];
    let m = SnapshotMap.empty<number>();
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let round = 0; round < 200; round++) {
      const changes = new Map<string, number | undefined>();
      for (let i = 0; i < 1 + rand(40); i++) {
        const key = `ns-${rand(5)}/svc-${rand(3000)}`;
        changes.set(key, rand(4) === 0 ? undefined : round * 1000 + i);
      }
      m = m.with(changes);
      for (const [k, v] of changes) if (v === undefined) reference.delete(k); else reference.set(k, v);
      versions.push([m, new Map(reference)]);
    }
    for (const [version, expected] of versions) {
      assert.equal(version.size, expected.size);
      assert.deepEqual(new Map(version), expected, 'iteration yields exactly the entries');
      for (const [k, v] of expected) { assert.equal(version.get(k), v); assert.ok(version.has(k)); }
      assert.equal(version.get('ns-9/absent'), undefined);
      assert.equal([...version.keys()].length, expected.size);
      assert.equal([...version.values()].length, expected.size);
    }
  });

  it('no effective change returns the same map; emptied maps iterate nothing', () => {
    const a = SnapshotMap.empty<string>().with(new Map([['x/a', 'A'], ['x/b', 'B']]));
    assert.equal(a.with(new Map()), a);
    assert.equal(a.with(new Map([['x/absent', undefined]])), a);
    const empty = a.with(new Map([['x/a', undefined], ['x/b', undefined]]));
    assert.equal(empty.size, 0);
    assert.deepEqual([...empty], []);
    assert.deepEqual([...a].sort(), [['x/a', 'A'], ['x/b', 'B']]);
  });
});

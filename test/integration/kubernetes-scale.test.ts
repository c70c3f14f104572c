// The kubernetes backend at registry scale (issue 11 items 3, 4, 8, 9), against the API server fake: paged LISTs
// (api-concepts.md "Retrieving large results sets in chunks"), one watch event among thousands of services
// emitting exactly that service (the store's changed-keys hint, model/service.ts), snapshots that stay immutable,
// and an informer cache that keeps none of the API object fields we drop. No wall-clock assertion anywhere.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import pino from 'pino';
import type { Backend } from '../../src/backends/backend.ts';
import { Backoff } from '../../src/backends/backoff.ts';
import { configSchema, create } from '../../src/backends/kubernetes/index.ts';
import { LIST_PAGE_SIZE } from '../../src/backends/kubernetes/watcher.ts';
import { KubeApiServerFake, RecordingSink, endpointSlice, type KubeObject } from '../fakes/kube-apiserver-fake.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const running: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (running.length) await running.pop()!();
});

const addr = (k: number, j: number) => `10.${(k >> 8) & 255}.${k & 255}.${j + 1}`;
const slice = (k: number, ready = true, per = 2): KubeObject =>
  endpointSlice({
    namespace: 'default',
    name: `svc-${k}-b7x2q`,
    service: `svc-${k}`,
    ports: [{ name: 'http', port: 8080 }],
    endpoints: Array.from({ length: per }, (_, j) => ({ addresses: [addr(k, j)], ready: j === 0 ? ready : true })),
  });

async function start(fake: KubeApiServerFake): Promise<{ backend: Backend; sink: RecordingSink }> {
  const dir = tempDir('svcdns-k8s-scale-');
  writeFileSync(join(dir, 'kubeconfig'), fake.kubeconfig());
  const backend = create(
    configSchema.parse({ type: 'kubernetes', kubeconfig: 'kubeconfig' }),
    { logger: pino({ level: 'silent' }), configDir: dir, env: {} },
    { backoff: () => new Backoff({ initialMs: 20, maxMs: 200 }), maxReconnectDelayMs: 50 },
  );
  const sink = new RecordingSink();
  running.push(async () => { await backend.stop(); await fake.stop(); });
  backend.start(sink);
  return { backend, sink };
}

describe('kubernetes backend at scale (issue 11)', () => {
  it('the first LIST is paged with limit/continue at one resourceVersion (api-concepts.md chunking)', async () => {
    const fake = await KubeApiServerFake.start();
    const n = LIST_PAGE_SIZE * 2 + 7;
    for (let k = 0; k < n; k++) fake.apply(slice(k));
    const { sink } = await start(fake);
    await fake.waitFor(() => sink.snapshots.length > 0, 'first snapshot');
    assert.equal(sink.last!.services.size, n, 'every service of every page');
    const lists = fake.requests.filter((r) => r.verb === 'list');
    assert.deepEqual(lists.map((r) => r.query.limit), [String(LIST_PAGE_SIZE), String(LIST_PAGE_SIZE), String(LIST_PAGE_SIZE)]);
    assert.deepEqual(lists.map((r) => r.query.continue === undefined), [true, false, false], 'pages 2 and 3 continue page 1');
    assert.equal(sink.snapshots.length, 1, 'one snapshot for the whole paged LIST, none per page');
  });

  it('an expired continue token (410) falls back to one full LIST, as client-go does, and loses nothing', async () => {
    const fake = await KubeApiServerFake.start();
    const n = LIST_PAGE_SIZE + 3;
    for (let k = 0; k < n; k++) fake.apply(slice(k));
    fake.expireContinues = 1;
    const { sink } = await start(fake);
    await fake.waitFor(() => sink.snapshots.length > 0, 'first snapshot');
    assert.equal(sink.last!.services.size, n);
    const lists = fake.requests.filter((r) => r.verb === 'list');
    assert.deepEqual(lists.map((r) => r.status), [200, 410, 200]);
    assert.equal(lists[2]!.query.limit, undefined, 'the fallback asks for everything at once');
    assert.equal(sink.errors.length, 0, 'an expired token is routine, not an error');
  });

  it('one watch event among 10,000 services: the snapshot names only that service, and earlier snapshots stay as they were', async () => {
    const fake = await KubeApiServerFake.start();
    const n = 10_000;
    for (let k = 0; k < n; k++) fake.apply(slice(k, true, 1));
    const { sink } = await start(fake);
    await fake.waitFor(() => sink.snapshots.length > 0, 'first snapshot');
    await fake.waitFor(() => fake.openWatches === 1, 'watching');
    const first = sink.last!;
    assert.equal(first.services.size, n);
    const before = first.services.get('default/svc-4321')!;
    assert.deepEqual(before.instances.map((i) => i.address), [addr(4321, 0)]);

    fake.apply(slice(4321, false, 1)); // its only endpoint becomes unready
    await fake.waitFor(() => sink.snapshots.length === 2, 'the change');
    const second = sink.last!;
    assert.deepEqual([...second.changed!], ['default/svc-4321'], 'the changed-keys hint names only the changed service');
    assert.deepEqual(second.services.get('default/svc-4321')!.instances, [], 'known service, nothing ready (§5.3)');
    assert.equal(second.services.size, n);
    for (const k of [0, 1, 4320, 4322, n - 1]) {
      assert.equal(second.services.get(`default/svc-${k}`), first.services.get(`default/svc-${k}`), 'untouched services are the same objects');
    }
    // The store diffs the new snapshot against the previous one, so the previous map must not have changed.
    assert.equal(first.services.get('default/svc-4321'), before);
    assert.equal([...first.services.keys()].length, n);

    fake.delete('EndpointSlice', 'default', 'svc-77-b7x2q');
    await fake.waitFor(() => sink.snapshots.length === 3, 'the deletion');
    assert.deepEqual([...sink.last!.changed!], ['default/svc-77']);
    assert.equal(sink.last!.services.has('default/svc-77'), false);
    assert.equal(sink.last!.services.size, n - 1);
    assert.equal(second.services.has('default/svc-77'), true, 'the earlier snapshot still has it');
  });
});

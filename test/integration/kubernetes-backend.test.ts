// The kubernetes backend (real @kubernetes/client-node informers) against the API server fake, observed at the
// sink: what it serves (§6.1), how watch failures are survived (§6.3), and that it never reports before its
// first LIST (§5.4). DNS-level behaviour is in kubernetes-dns.test.ts.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import pino from 'pino';
import type { Backend } from '../../src/backends/backend.ts';
import { Backoff } from '../../src/backends/backoff.ts';
import { configSchema, create } from '../../src/backends/kubernetes/index.ts';
import {
  KubeApiServerFake,
  RecordingSink,
  endpointSlice,
  legacyEndpoints,
  type SliceEndpoint,
} from '../fakes/kube-apiserver-fake.ts';
import { tempDir } from '../helpers/temp-dir.ts';

interface Harness {
  fake: KubeApiServerFake;
  backend: Backend;
  sink: RecordingSink;
  until(cond: () => boolean, what: string, timeoutMs?: number): Promise<void>;
}

const running: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (running.length) await running.pop()!();
});

async function harness(cfg: Record<string, unknown> = {}, opts: { start?: boolean; resyncMs?: number; fake?: KubeApiServerFake } = {}): Promise<Harness> {
  const fake = opts.fake ?? (await KubeApiServerFake.start());
  const dir = tempDir('svcdns-k8s-');
  writeFileSync(join(dir, 'kubeconfig'), fake.kubeconfig());
  const backend = create(
    configSchema.parse({ type: 'kubernetes', kubeconfig: 'kubeconfig', ...cfg }),
    { logger: pino({ level: 'silent' }), configDir: dir, env: {} },
    // Fast retries keep the suite short; the production defaults are 250 ms → 30 s.
    { backoff: () => new Backoff({ initialMs: 20, maxMs: 200 }), maxReconnectDelayMs: 50, ...(opts.resyncMs ? { resyncMs: opts.resyncMs } : {}) },
  );
  const sink = new RecordingSink();
  running.push(async () => { await backend.stop(); await fake.stop(); });
  if (opts.start !== false) backend.start(sink);
  return { fake, backend, sink, until: (c, w, t) => fake.waitFor(c, w, t) };
}

const web = (endpoints: SliceEndpoint[], name = 'web-abc12', extra: Partial<Parameters<typeof endpointSlice>[0]> = {}) =>
  endpointSlice({ namespace: 'default', name, service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints, ...extra });

/** True when no snapshot after the first one lacks `scope/name` or has it empty (served data never dropped). */
function neverDropped(sink: RecordingSink, key: string): boolean {
  return sink.snapshots.every((s) => (s.services.get(key)?.instances.length ?? 0) > 0);
}

describe('kubernetes backend: serving ready endpoints (§6.1)', () => {
  it('a pod becoming ready, unready, terminating and deleted is reflected in snapshots', async () => {
    const h = await harness();
    h.fake.apply(web([{ addresses: ['10.0.0.1'], ready: true }]));
    await h.until(() => h.sink.snapshots.length === 1, 'first snapshot');
    await h.until(() => h.fake.openWatches === 1, 'watch');
    assert.deepEqual(h.sink.addresses('default', 'web'), ['10.0.0.1']);

    h.fake.apply(web([{ addresses: ['10.0.0.1'], ready: true }, { addresses: ['10.0.0.2'], ready: false }]));
    h.fake.apply(web([{ addresses: ['10.0.0.1'], ready: true }, { addresses: ['10.0.0.2'], ready: true, serving: true, terminating: false }]));
    await h.until(() => h.sink.addresses('default', 'web')?.length === 2, 'pod 2 ready');
    // While it was not ready (the first of the two events) it was never served.
    assert.ok(h.sink.snapshots.slice(0, -1).every((s) => !s.services.get('default/web')!.instances.some((i) => i.address === '10.0.0.2')));

    h.fake.apply(web([{ addresses: ['10.0.0.1'], ready: false, serving: true, terminating: true }, { addresses: ['10.0.0.2'], ready: true }]));
    await h.until(() => h.sink.addresses('default', 'web')?.join() === '10.0.0.2', 'pod 1 terminating');

    h.fake.apply(web([{ addresses: ['10.0.0.2'], ready: false }]));
    await h.until(() => h.sink.addresses('default', 'web')?.length === 0, 'pod 2 unready: known service, no instances (§5.3)');

    h.fake.delete('EndpointSlice', 'default', 'web-abc12');
    await h.until(() => h.sink.last?.services.has('default/web') === false, 'slice deleted: service gone');
    assert.equal(h.sink.errors.length, 0);
  });

  it('several slices per service, IPv6 slices, named ports with protocol, empty slices', async () => {
    const h = await harness();
    h.fake.apply(web([{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'] }], 'web-aaaaa'));
    h.fake.apply(web([{ addresses: ['10.0.0.2'] }, { addresses: ['10.0.0.3'], ready: true }], 'web-bbbbb'));
    h.fake.apply(web([{ addresses: ['fd00::1'] }, { addresses: ['fd00:0::2'], ready: false }], 'web-v6', { addressType: 'IPv6' }));
    h.fake.apply(endpointSlice({ namespace: 'default', name: 'dns-x', service: 'dns', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }], endpoints: [{ addresses: ['10.0.1.1'] }] }));
    h.fake.apply(endpointSlice({ namespace: 'default', name: 'idle-x', service: 'idle', endpoints: [] }));
    h.fake.apply(endpointSlice({ namespace: 'default', name: 'orphan', endpoints: [{ addresses: ['10.9.9.9'] }] })); // no service label
    await h.until(() => h.sink.snapshots.length > 0, 'sync');
    assert.deepEqual(h.sink.addresses('default', 'web'), ['10.0.0.1', '10.0.0.2', '10.0.0.3', 'fd00::1']);
    assert.deepEqual(h.sink.last!.services.get('default/web')!.instances.map((i) => i.family), [4, 4, 4, 6]);
    assert.deepEqual(h.sink.view('default', 'dns'), ['10.0.1.1:53/tcp[dns-tcp]', '10.0.1.1:53/udp[dns]']);
    assert.deepEqual(h.sink.addresses('default', 'idle'), []);
    assert.equal(h.sink.last!.services.size, 3, 'the unlabelled slice is filtered by the API server (label selector)');
    assert.equal(h.fake.requests[0]!.query.labelSelector, 'kubernetes.io/service-name');

    // Moving an address between slices keeps the merged view, and the unchanged service keeps its identity.
    const dnsBefore = h.sink.last!.services.get('default/dns');
    await h.until(() => h.fake.openWatches === 1, 'watch');
    h.fake.apply(web([{ addresses: ['10.0.0.1'] }], 'web-aaaaa'));
    await h.until(() => h.sink.addresses('default', 'web')?.join() === '10.0.0.1,10.0.0.2,10.0.0.3,fd00::1' && h.sink.snapshots.length >= 1, 'still merged');
    h.fake.delete('EndpointSlice', 'default', 'web-bbbbb');
    await h.until(() => h.sink.addresses('default', 'web')?.join() === '10.0.0.1,fd00::1', 'slice b gone');
    assert.equal(h.sink.last!.services.get('default/dns'), dnsBefore);
  });

  it('namespaces = scopes; one namespaced watch each; defaultScope in the snapshot', async () => {
    const fake = await KubeApiServerFake.start();
    for (const ns of ['prod', 'staging', 'dev']) {
      fake.apply(endpointSlice({ namespace: ns, name: 'api-1', service: 'api', ports: [{ name: 'grpc', port: 9090 }], endpoints: [{ addresses: [`10.${ns.length}.0.1`] }] }));
    }
    const h = await harness({ namespaces: ['prod', 'staging'], defaultScope: 'prod' }, { fake });
    await h.until(() => h.sink.snapshots.length > 0, 'sync');
    assert.deepEqual([...h.sink.last!.services.keys()].sort(), ['prod/api', 'staging/api']);
    assert.equal(h.sink.last!.defaultScope, 'prod');
    assert.deepEqual(new Set(fake.requests.map((r) => r.namespace)), new Set(['prod', 'staging']));
    await h.until(() => fake.openWatches === 2, 'two watches');
    fake.apply(endpointSlice({ namespace: 'dev', name: 'api-2', service: 'api', endpoints: [{ addresses: ['10.3.0.2'] }] }));
    fake.apply(endpointSlice({ namespace: 'staging', name: 'api-2', service: 'api', endpoints: [{ addresses: ['10.7.0.2'] }] }));
    await h.until(() => h.sink.addresses('staging', 'api')?.length === 2, 'staging change');
    assert.equal(h.sink.last!.services.has('dev/api'), false);
  });

  it('labelSelector exposes only matching services; a service leaving the selector disappears', async () => {
    const h = await harness({ labelSelector: 'svcdns.io/expose=true' });
    const exposed = { 'svcdns.io/expose': 'true' };
    h.fake.apply(web([{ addresses: ['10.0.0.1'] }], 'web-1', { labels: exposed }));
    h.fake.apply(endpointSlice({ namespace: 'default', name: 'db-1', service: 'db', endpoints: [{ addresses: ['10.0.0.9'] }] }));
    await h.until(() => h.sink.snapshots.length > 0, 'sync');
    assert.deepEqual([...h.sink.last!.services.keys()], ['default/web']);
    assert.equal(h.fake.requests[0]!.query.labelSelector, 'kubernetes.io/service-name,svcdns.io/expose=true');
    await h.until(() => h.fake.openWatches === 1, 'watch');
    h.fake.apply(endpointSlice({ namespace: 'default', name: 'db-1', service: 'db', labels: exposed, endpoints: [{ addresses: ['10.0.0.9'] }] }));
    await h.until(() => h.sink.last!.services.has('default/db'), 'db exposed');
    h.fake.apply(web([{ addresses: ['10.0.0.1'] }], 'web-1'));
    await h.until(() => !h.sink.last!.services.has('default/web'), 'web unexposed');
  });

  it('api: endpoints reads legacy core/v1 Endpoints: addresses only, never notReadyAddresses', async () => {
    const h = await harness({ api: 'endpoints' });
    h.fake.apply(legacyEndpoints({
      namespace: 'ns', name: 'name1',
      subsets: [
        { addresses: ['172.17.0.1', '172.17.0.2'], ports: [{ name: 'port1', port: 8989 }] },
        { addresses: ['172.17.0.1'], notReadyAddresses: ['172.17.0.2'], ports: [{ name: 'port2', port: 9999 }] },
      ],
    }));
    await h.until(() => h.sink.snapshots.length > 0, 'sync');
    assert.deepEqual(h.sink.view('ns', 'name1'), ['172.17.0.1:8989/tcp[port1]', '172.17.0.1:9999/tcp[port2]', '172.17.0.2:8989/tcp[port1]']);
    assert.ok(h.fake.requests.every((r) => r.group === '' && r.resource === 'endpoints'));
    await h.until(() => h.fake.openWatches === 1, 'watch');
    h.fake.apply(legacyEndpoints({ namespace: 'ns', name: 'name1', subsets: [{ notReadyAddresses: ['172.17.0.1', '172.17.0.2'], ports: [{ name: 'port1', port: 8989 }] }] }));
    await h.until(() => h.sink.addresses('ns', 'name1')?.length === 0, 'all not ready');
  });
});

describe('kubernetes backend: watch failures (§6.3)', () => {
  async function synced(cfg: Record<string, unknown> = {}) {
    const h = await harness(cfg);
    h.fake.apply(web([{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'] }], 'web-old'));
    await h.until(() => h.sink.snapshots.length === 1, 'sync');
    await h.until(() => h.fake.openWatches === 1, 'watch');
    return h;
  }

  it('410 as HTTP status: relist, resume watching from the list resourceVersion, never drop served data', async () => {
    const h = await synced();
    // While the client is away the slice is replaced by another one (new name) and gains a pod.
    h.fake.deleteSilently('EndpointSlice', 'default', 'web-old');
    h.fake.applySilently(web([{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'] }, { addresses: ['10.0.0.3'] }], 'web-new'));
    h.fake.listDelayMs = 100; // a slow relist: the last good set must stay served meanwhile
    const lists = h.fake.count('list');
    h.fake.expire('status', 'Expired');
    await h.until(() => h.fake.count('watch', undefined, 410) === 1, 'watch answered 410');
    assert.deepEqual(h.sink.addresses('default', 'web'), ['10.0.0.1', '10.0.0.2'], 'served during the relist');
    await h.until(() => h.sink.addresses('default', 'web')?.length === 3, 'relisted');
    assert.equal(h.fake.count('list'), lists + 1);
    assert.ok(neverDropped(h.sink, 'default/web'), 'no snapshot ever lost the service');
    assert.equal(h.sink.errors.length, 0, '410 is routine, not an error');
    await h.until(() => h.fake.openWatches === 1, 'watching again');
    const lastWatch = h.fake.requests.filter((r) => r.verb === 'watch').at(-1)!;
    assert.equal(lastWatch.query.resourceVersion, String(h.fake.resourceVersion), 'watch resumes at the relist resourceVersion');
    assert.equal(lastWatch.status, 200);
  });

  for (const reason of ['Expired', 'Gone'] as const) {
    it(`410 as an in-stream ERROR event (reason ${reason}) inside a 200 watch: relist without dropping data`, async () => {
      const h = await synced();
      h.fake.applySilently(web([{ addresses: ['10.0.0.2'] }, { addresses: ['10.0.0.4'] }], 'web-old'));
      const lists = h.fake.count('list');
      h.fake.expireInStream(reason);
      await h.until(() => h.sink.addresses('default', 'web')?.join() === '10.0.0.2,10.0.0.4', 'relisted');
      assert.equal(h.fake.count('list'), lists + 1);
      assert.ok(neverDropped(h.sink, 'default/web'));
      // And the other path: a reconnecting watch whose resourceVersion is too old gets 200 + ERROR.
      await h.until(() => h.fake.openWatches === 1, 'watching again');
      h.fake.applySilently(web([{ addresses: ['10.0.0.5'] }], 'web-old'));
      h.fake.expire('event', reason);
      await h.until(() => h.sink.addresses('default', 'web')?.join() === '10.0.0.5', 'relisted again');
      assert.equal(h.fake.count('list'), lists + 2);
      assert.equal(h.fake.count('watch', undefined, 410), 0, 'never as an HTTP status here');
      assert.equal(h.sink.errors.length, 0);
    });
  }

  it('the etcd2-era ERROR without a code ("outdated and cleared") also relists', async () => {
    const h = await synced();
    const lists = h.fake.count('list');
    h.fake.writeAndClose(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: '401: The event in requested index is outdated and cleared (the requested history has been cleared [4770862/4659254]) [4771861]' } }));
    await h.until(() => h.fake.count('list') === lists + 1, 'relist');
  });

  it('bookmarks are requested and move the resourceVersion; a closed stream resumes without a relist', async () => {
    const h = await synced();
    const first = h.fake.requests.find((r) => r.verb === 'watch')!;
    assert.equal(first.query.allowWatchBookmarks, 'true');
    // Changes to other objects the client does not watch advance the global resourceVersion.
    h.fake.apply(legacyEndpoints({ namespace: 'default', name: 'other', subsets: [] }));
    assert.equal(h.fake.bookmark(), 1);
    const bookmarkRv = h.fake.resourceVersion;
    await new Promise((r) => setImmediate(r));
    const lists = h.fake.count('list');
    const watches = h.fake.count('watch');
    h.fake.closeWatches();
    // An event while disconnected is replayed from history on the resumed watch.
    h.fake.apply(web([{ addresses: ['10.0.0.7'] }], 'web-old'));
    await h.until(() => h.sink.addresses('default', 'web')?.join() === '10.0.0.7', 'replayed after reconnect');
    const resumed = h.fake.requests.filter((r) => r.verb === 'watch')[watches]!;
    assert.equal(resumed.query.resourceVersion, String(bookmarkRv));
    assert.equal(h.fake.count('list'), lists, 'no relist after a clean close');
  });

  it('403 on list: not ready, the error names the verb/resource/group and the grant; ready once allowed', async () => {
    const fake = await KubeApiServerFake.start();
    fake.apply(web([{ addresses: ['10.0.0.1'] }]));
    fake.forbid('endpointslices', 'list');
    const h = await harness({}, { fake });
    await h.until(() => h.sink.errors.length >= 2, 'retried with backoff');
    assert.equal(h.sink.snapshots.length, 0, 'never synced (SERVFAIL, §5.4)');
    const e = h.sink.errors[0]!;
    assert.equal(e.code, 'SVCDNS_BACKEND_FORBIDDEN');
    assert.equal(e.message, 'forbidden: cannot list resource "endpointslices" in API group "discovery.k8s.io" at the cluster scope — grant list,watch on discovery.k8s.io/endpointslices');
    assert.match(String(e.details.server), /system:serviceaccount:svcdns:svcdns" cannot list resource/);
    fake.allow('endpointslices', 'list');
    await h.until(() => h.sink.snapshots.length === 1, 'synced after the grant');
  });

  it('403 on watch names the watch verb; 401 (bad token) is FORBIDDEN too', async () => {
    const fake = await KubeApiServerFake.start();
    fake.forbid('endpoints', 'watch');
    const h = await harness({ api: 'endpoints', namespaces: ['prod'] }, { fake });
    await h.until(() => h.sink.errors.length >= 1, 'watch refused');
    assert.equal(h.sink.errors[0]!.message, 'forbidden: cannot watch resource "endpoints" in API group "" in the namespace "prod" — grant list,watch on core/endpoints');

    const dir = tempDir('svcdns-k8s-');
    writeFileSync(join(dir, 'kc'), fake.kubeconfig({ token: 'wrong' }));
    const bad = create(configSchema.parse({ type: 'kubernetes', kubeconfig: 'kc' }), { logger: pino({ level: 'silent' }), configDir: dir, env: {} });
    const sink = new RecordingSink();
    running.push(() => bad.stop());
    bad.start(sink);
    await fake.waitFor(() => sink.errors.length >= 1, '401');
    assert.equal(sink.errors[0]!.code, 'SVCDNS_BACKEND_FORBIDDEN');
    assert.equal(sink.snapshots.length, 0);
  });

  it('API server down before the first sync: UNREACHABLE, no snapshot; synced once it is up', async () => {
    const fake = await KubeApiServerFake.start();
    fake.apply(web([{ addresses: ['10.0.0.1'] }]));
    await fake.down();
    const h = await harness({}, { fake });
    await h.until(() => h.sink.errors.length >= 3, 'retries');
    assert.ok(h.sink.errors.every((e) => e.code === 'SVCDNS_BACKEND_UNREACHABLE'));
    assert.equal(h.sink.snapshots.length, 0);
    await fake.up();
    await h.until(() => h.sink.snapshots.length === 1, 'synced');
    assert.deepEqual(h.sink.addresses('default', 'web'), ['10.0.0.1']);
  });

  it('API server down after the sync: last known set kept (no snapshot), recovery re-reports and catches up', async () => {
    const h = await synced();
    const before = h.sink.snapshots.length;
    await h.fake.down();
    await h.until(() => h.sink.errors.length >= 3, 'retrying');
    assert.equal(h.sink.snapshots.length, before, 'nothing emitted while down: the store keeps serving the last set');
    assert.ok(h.sink.errors.every((e) => e.code === 'SVCDNS_BACKEND_UNREACHABLE'));
    await h.fake.up();
    // Back up with no change: a snapshot (same services) clears the staleness.
    await h.until(() => h.sink.events.at(-1)!.kind === 'snapshot', 'recovered');
    assert.equal(h.sink.last!.services.get('default/web'), h.sink.snapshots[0]!.services.get('default/web'));
    h.fake.apply(web([{ addresses: ['10.0.0.9'] }], 'web-old'));
    await h.until(() => h.sink.addresses('default', 'web')?.join() === '10.0.0.9', 'watching again');
    assert.ok(neverDropped(h.sink, 'default/web'));
  });

  it('stop() during an in-flight LIST opens no watch afterwards and reports nothing', async () => {
    const fake = await KubeApiServerFake.start();
    fake.apply(web([{ addresses: ['10.0.0.1'] }]));
    fake.listDelayMs = 150;
    const h = await harness({}, { fake });
    await h.until(() => fake.requests.length === 1, 'list sent');
    await h.backend.stop();
    await h.until(() => fake.listsAnswered === 1, 'delayed LIST answered');
    // Observation window for a (wrong) watch request: absence can only be checked over some time.
    await assert.rejects(h.until(() => fake.count('watch') > 0, 'a watch after stop()', 200));
    assert.equal(fake.count('watch'), 0);
    assert.equal(fake.openWatches, 0);
    assert.equal(h.sink.events.length, 0);
  });

  it('periodic resync relists and heals silently missed changes', async () => {
    const h = await harness({}, { resyncMs: 300 });
    h.fake.apply(web([{ addresses: ['10.0.0.1'] }]));
    await h.until(() => h.sink.snapshots.length === 1, 'sync');
    await h.until(() => h.fake.openWatches === 1, 'watch');
    h.fake.applySilently(web([{ addresses: ['10.0.0.2'] }]));
    await h.until(() => h.sink.addresses('default', 'web')?.join() === '10.0.0.2', 'healed by resync');
    assert.ok(h.fake.count('list') >= 2);
    assert.ok(neverDropped(h.sink, 'default/web'));
  });
});

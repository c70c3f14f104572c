// End to end through real DNS (dig and UDP/TCP on 127.0.0.1:0): the real server with a `type: kubernetes`
// backend whose real client-node informers talk to the API server fake through a kubeconfig. Covers pod
// lifecycle (§6.1), names (§2.1–§2.3), SERVFAIL before sync (§5.4), failures keeping answers (§6.3), and
// measures watch-event → changed-answer latency (§6.4), printed as p50/p99.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';
import { KubeApiServerFake, endpointSlice, type SliceEndpoint } from '../fakes/kube-apiserver-fake.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);

async function start(backend: Record<string, unknown>, fake: KubeApiServerFake): Promise<TestServer> {
  const dir = tempDir('svcdns-k8s-dns-');
  writeFileSync(join(dir, 'kubeconfig'), fake.kubeconfig());
  return startServer({ backends: [{ type: 'kubernetes', kubeconfig: 'kubeconfig', ...backend }] }, { configDir: dir });
}

/** `dig +short`-free: the status and sorted answer data of a real dig query. */
async function dig(port: number, name: string, type: string): Promise<{ status: string; answers: string[] }> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+tries=4', '+time=5', '+noall', '+comments', '+answer', name, type]);
  const status = /status: (\w+)/.exec(stdout)?.[1] ?? 'NONE';
  const answers = stdout.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.trim().split(/\s+/).slice(4).join(' ')).sort();
  return { status, answers };
}

const web = (endpoints: SliceEndpoint[], name = 'web-abc12', extra: Partial<Parameters<typeof endpointSlice>[0]> = {}) =>
  endpointSlice({ namespace: 'default', name, service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints, ...extra });

describe('kubernetes over DNS: pod lifecycle and propagation (§6.1, §6.4)', () => {
  let fake: KubeApiServerFake;
  let srv: TestServer;
  before(async () => {
    fake = await KubeApiServerFake.start();
    fake.apply(web([{ addresses: ['10.0.0.1'], ready: true }]));
    srv = await start({ defaultScope: 'default' }, fake);
    await waitFor(() => !srv.app.store.anyPending);
    await fake.waitFor(() => fake.openWatches === 1, 'watch');
  });
  after(async () => { await srv.stop(); await fake.stop(); });

  it('ready / unready / terminating / deleted, each visible in dig answers', async () => {
    const name = 'web.service.sd.internal';
    assert.deepEqual(await dig(srv.port, name, 'A'), { status: 'NOERROR', answers: ['10.0.0.1'] });

    fake.apply(web([{ addresses: ['10.0.0.1'], ready: true }, { addresses: ['10.0.0.2'], ready: false, serving: false, terminating: false }]));
    fake.apply(web([{ addresses: ['10.0.0.1'], ready: true }, { addresses: ['10.0.0.2'], ready: true, serving: true, terminating: false }]));
    await waitFor(async () => (await dig(srv.port, name, 'A')).answers.length === 2);
    assert.deepEqual((await dig(srv.port, name, 'A')).answers, ['10.0.0.1', '10.0.0.2']);

    fake.apply(web([{ addresses: ['10.0.0.1'], ready: false, serving: false, terminating: false }, { addresses: ['10.0.0.2'], ready: true }]));
    await waitFor(async () => (await dig(srv.port, name, 'A')).answers.join() === '10.0.0.2');

    fake.apply(web([{ addresses: ['10.0.0.2'], ready: false, serving: true, terminating: true }]));
    // A known service with nothing ready: NODATA, not NXDOMAIN (§5.3).
    await waitFor(async () => (await dig(srv.port, name, 'A')).answers.length === 0);
    assert.deepEqual(await dig(srv.port, name, 'A'), { status: 'NOERROR', answers: [] });

    fake.delete('EndpointSlice', 'default', 'web-abc12');
    await waitFor(async () => (await dig(srv.port, name, 'A')).status === 'NXDOMAIN');
  });

  it('each of 200 successive watch events reaches the DNS answer, in order (§6.4)', async () => {
    fake.apply(web([{ addresses: ['10.1.0.1'] }], 'lat-1', { service: 'lat' }));
    await waitFor(async () => answerData(await query(srv.port, 'lat.service.sd.internal', 'A'), 'A').length === 1);
    // How fast they arrive is measured by npm run bench; here every change must show up, none may be skipped.
    for (let i = 0; i < 200; i++) {
      const want = `10.1.${1 + (i % 200)}.${2 + (i % 250)}`;
      fake.apply(web([{ addresses: [want] }], 'lat-1', { service: 'lat' }));
      await waitFor(async () => answerData(await query(srv.port, 'lat.service.sd.internal', 'A'), 'A').join() === want, undefined, 1);
    }
  });
});

describe('kubernetes over DNS: names (§2.1–§2.3)', () => {
  let fake: KubeApiServerFake;
  let srv: TestServer;
  before(async () => {
    fake = await KubeApiServerFake.start();
    const exposed = { 'svcdns.io/expose': 'true' };
    for (const ns of ['prod', 'staging']) {
      fake.apply(endpointSlice({ namespace: ns, name: 'api-a', service: 'api', labels: exposed, ports: [{ name: 'grpc', port: 9090 }, { name: 'metrics', port: 9100 }], endpoints: [{ addresses: [`10.${ns === 'prod' ? 1 : 2}.0.1`] }, { addresses: [`10.${ns === 'prod' ? 1 : 2}.0.2`], ready: false }] }));
      fake.apply(endpointSlice({ namespace: ns, name: 'api-b', service: 'api', labels: exposed, ports: [{ name: 'grpc', port: 9090 }, { name: 'metrics', port: 9100 }], endpoints: [{ addresses: [`10.${ns === 'prod' ? 1 : 2}.0.3`] }, { addresses: [`10.${ns === 'prod' ? 1 : 2}.0.1`] }] }));
      fake.apply(endpointSlice({ namespace: ns, name: 'api-v6', service: 'api', labels: exposed, addressType: 'IPv6', ports: [{ name: 'grpc', port: 9090 }, { name: 'metrics', port: 9100 }], endpoints: [{ addresses: ['fd00:0:0::a'] }] }));
      fake.apply(endpointSlice({ namespace: ns, name: 'dns-a', service: 'dns', labels: exposed, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }], endpoints: [{ addresses: ['10.9.0.53'] }] }));
      fake.apply(endpointSlice({ namespace: ns, name: 'secret-a', service: 'secret', ports: [{ name: 'http', port: 80 }], endpoints: [{ addresses: ['10.66.0.1'] }] }));
    }
    fake.apply(endpointSlice({ namespace: 'dev', name: 'api-a', service: 'api', labels: exposed, endpoints: [{ addresses: ['10.3.0.1'] }] }));
    srv = await start({ namespaces: ['prod', 'staging'], defaultScope: 'prod', labelSelector: 'svcdns.io/expose=true' }, fake);
    await waitFor(() => !srv.app.store.anyPending);
  });
  after(async () => { await srv.stop(); await fake.stop(); });

  it('several slices merged, de-duplicated; IPv6 slice → AAAA; defaultScope answers unscoped names', async () => {
    assert.deepEqual(answerData(await query(srv.port, 'api.service.sd.internal', 'A'), 'A'), ['10.1.0.1', '10.1.0.3']);
    assert.deepEqual(answerData(await query(srv.port, 'api.service.prod.sd.internal', 'A'), 'A'), ['10.1.0.1', '10.1.0.3']);
    assert.deepEqual(answerData(await query(srv.port, 'api.service.staging.sd.internal', 'A'), 'A'), ['10.2.0.1', '10.2.0.3']);
    assert.deepEqual(answerData(await query(srv.port, 'api.service.sd.internal', 'AAAA'), 'AAAA'), ['fd00::a']);
    assert.deepEqual((await dig(srv.port, 'api.service.staging.sd.internal', 'AAAA')).answers, ['fd00::a']);
  });

  it('named ports: SRV per port with protocol (§2.3b), port name as a tag (§2.2)', async () => {
    const grpc = await query(srv.port, '_grpc._tcp.api.service.staging.sd.internal', 'SRV');
    assert.equal(rcode(grpc), 'NOERROR');
    const data = answerData(grpc, 'SRV');
    assert.equal(data.length, 3);
    assert.ok(data.every((d) => d.startsWith('1 1 9090 ')), data.join('|'));
    const udp = answerData(await query(srv.port, '_dns._udp.dns.service.sd.internal', 'SRV'), 'SRV');
    assert.deepEqual(udp.map((d) => d.split(' ').slice(0, 3).join(' ')), ['1 1 53']);
    assert.equal(answerData(await query(srv.port, '_dns._tcp.dns.service.sd.internal', 'SRV'), 'SRV').length, 0, 'the udp port is not served as tcp');
    assert.deepEqual(answerData(await query(srv.port, 'metrics.api.service.sd.internal', 'A'), 'A'), ['10.1.0.1', '10.1.0.3']);
    const viaTcp = await query(srv.port, '_grpc._tcp.api.service.sd.internal', 'SRV', { tcp: true });
    assert.equal(answerData(viaTcp, 'SRV').length, 3);
  });

  it('namespaces outside the list and services outside the label selector are not served', async () => {
    assert.equal(rcode(await query(srv.port, 'api.service.dev.sd.internal', 'A')), 'NXDOMAIN');
    assert.equal(rcode(await query(srv.port, 'secret.service.sd.internal', 'A')), 'NXDOMAIN');
    assert.equal(rcode(await query(srv.port, 'secret.service.staging.sd.internal', 'A')), 'NXDOMAIN');
  });
});

describe('kubernetes over DNS: failures (§5.4, §6.3)', () => {
  it('403 before sync: SERVFAIL (never NXDOMAIN), /readyz-visible error; answers once RBAC is fixed', async () => {
    const fake = await KubeApiServerFake.start();
    fake.apply(web([{ addresses: ['10.0.0.1'] }]));
    fake.forbid('endpointslices', 'list');
    const srv = await start({ defaultScope: 'default' }, fake);
    try {
      await fake.waitFor(() => fake.count('list', undefined, 403) >= 1, '403');
      await waitFor(() => srv.app.store.status()[0]!.lastError !== null);
      assert.equal(srv.app.store.status()[0]!.lastError!.code, 'SVCDNS_BACKEND_FORBIDDEN');
      assert.equal(srv.app.store.status()[0]!.state, 'syncing');
      assert.equal((await dig(srv.port, 'web.service.sd.internal', 'A')).status, 'SERVFAIL');
      assert.equal(rcode(await query(srv.port, 'web.service.default.sd.internal', 'A')), 'SERVFAIL');
      fake.allow('endpointslices', 'list');
      await waitFor(async () => rcode(await query(srv.port, 'web.service.sd.internal', 'A')) === 'NOERROR');
    } finally {
      await srv.stop();
      await fake.stop();
    }
  });

  it('410 (both forms) and API server loss after sync: every answer during the outage still has data; recovery', async () => {
    const fake = await KubeApiServerFake.start();
    fake.apply(web([{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'] }], 'web-old'));
    const srv = await start({ defaultScope: 'default' }, fake);
    let polling = true;
    const empties: string[] = [];
    let polls = 0;
    let poller: Promise<void> | undefined;
    try {
      await waitFor(() => !srv.app.store.anyPending);
      await fake.waitFor(() => fake.openWatches === 1, 'watch');
      // Query continuously through everything below; no answer may be empty or an error.
      poller = (async () => {
        while (polling) {
          const r = await query(srv.port, 'web.service.sd.internal', 'A');
          polls++;
          if (rcode(r) !== 'NOERROR' || answerData(r, 'A').length === 0) empties.push(`${rcode(r)} ${answerData(r, 'A').join()}`);
          await new Promise((res) => setImmediate(res));
        }
      })();

      fake.deleteSilently('EndpointSlice', 'default', 'web-old');
      fake.applySilently(web([{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.3'] }], 'web-new'));
      fake.listDelayMs = 50;
      fake.expire('status', 'Expired');
      await waitFor(async () => answerData(await query(srv.port, 'web.service.sd.internal', 'A'), 'A').join() === '10.0.0.1,10.0.0.3');

      await fake.waitFor(() => fake.openWatches === 1, 'watch after relist');
      fake.applySilently(web([{ addresses: ['10.0.0.4'] }], 'web-new'));
      fake.expireInStream('Gone');
      await waitFor(async () => answerData(await query(srv.port, 'web.service.sd.internal', 'A'), 'A').join() === '10.0.0.4');

      await fake.waitFor(() => fake.openWatches === 1, 'watch after second relist');
      await fake.down();
      await waitFor(() => srv.app.store.status()[0]!.state === 'stale');
      assert.equal(srv.app.store.status()[0]!.lastError!.code, 'SVCDNS_BACKEND_UNREACHABLE');
      assert.deepEqual((await dig(srv.port, 'web.service.sd.internal', 'A')).answers, ['10.0.0.4'], 'last known set (§6.3)');
      await fake.up();
      await waitFor(() => srv.app.store.status()[0]!.state === 'synced');
      await fake.waitFor(() => fake.openWatches === 1, 'watch after recovery');
      fake.apply(web([{ addresses: ['10.0.0.5'] }], 'web-new'));
      await waitFor(async () => answerData(await query(srv.port, 'web.service.sd.internal', 'A'), 'A').join() === '10.0.0.5');
    } finally {
      polling = false;
      await poller?.catch(() => {}); // let the last query finish before the server goes away
      await srv.stop();
      await fake.stop();
    }
    assert.ok(polls > 20, `polled ${polls} times`);
    assert.deepEqual(empties, [], 'no empty/failed answer during relists or the outage');
  });
});

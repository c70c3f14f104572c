// Per-backend metrics owned by the backend modules (issue 13), through BackendContext.metrics, on a live server
// against the API fakes: Kubernetes watch events applied, 410 relists, informer restarts; Consul blocking slots
// in use, queued watches, the catalog watch's last reply age. Also promtool-clean with them present.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { answerData, query } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';
import { KubeApiServerFake, endpointSlice } from '../fakes/kube-apiserver-fake.ts';
import { ConsulFake } from '../fakes/consul-fake.ts';
import { requireTool } from '../e2e/harness.ts';
import { metric } from '../helpers/prom-text.ts';

function promtoolClean(text: string): void {
  const r = spawnSync(requireTool('promtool'), ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 60_000 });
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'promtool check metrics is clean');
  assert.equal(r.status, 0);
}

const web = (addresses: string[]) =>
  endpointSlice({ namespace: 'default', name: 'web-abc12', service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: addresses.map((a) => ({ addresses: [a], ready: true })) });

describe('kubernetes backend metrics', () => {
  it('svcdns_kubernetes_watch_events_total counts applied events; a 410 counts in watch_expired_relists_total; a failed watch in watch_restarts_total', async () => {
    const fake = await KubeApiServerFake.start();
    const dir = mkdtempSync(join(tmpdir(), 'svcdns-k8s-metrics-'));
    let srv: TestServer | undefined;
    try {
      fake.apply(web(['10.0.0.1']));
      writeFileSync(join(dir, 'kubeconfig'), fake.kubeconfig());
      srv = await startServer({ backends: [{ type: 'kubernetes', name: 'k8s', kubeconfig: 'kubeconfig', defaultScope: 'default' }] }, { configDir: dir });
      const s = srv;
      await waitFor(() => !s.app.store.anyPending);
      await fake.waitFor(() => fake.openWatches === 1, 'watch');
      const text = () => s.app.metrics.text();
      const l = { backend: 'k8s' };
      assert.equal(metric(await text(), 'svcdns_kubernetes_watch_events_total', l), 0, 'the LIST is not a watch event');
      assert.equal(metric(await text(), 'svcdns_kubernetes_watch_expired_relists_total', l), 0);
      assert.equal(metric(await text(), 'svcdns_kubernetes_watch_restarts_total', l), 0);

      fake.apply(web(['10.0.0.1', '10.0.0.2']));
      fake.apply(web(['10.0.0.2']));
      await waitFor(async () => answerData(await query(s.port, 'web.service.sd.internal', 'A'), 'A').join() === '10.0.0.2');
      assert.equal(metric(await text(), 'svcdns_kubernetes_watch_events_total', l), 2);

      fake.expireInStream('Gone');
      await waitFor(async () => metric(await text(), 'svcdns_kubernetes_watch_expired_relists_total', l) === 1);
      await fake.waitFor(() => fake.openWatches === 1, 'watch after the relist');

      // A watch the API refuses (403) fails the informer: it is restarted with backoff.
      fake.forbid('endpointslices', 'watch');
      fake.closeWatches();
      await waitFor(async () => (metric(await text(), 'svcdns_kubernetes_watch_restarts_total', l) ?? 0) >= 1);
      fake.allow('endpointslices', 'watch');
      promtoolClean(await text());
    } finally {
      await srv?.stop();
      await fake.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('consul backend metrics', () => {
  it('blocking slots, slots in use, watches, queued watches and the catalog reply age are exported per backend', async () => {
    const fake = await ConsulFake.start();
    let srv: TestServer | undefined;
    try {
      fake.addNode({ name: 'node-a', address: '10.0.0.1' });
      for (let i = 0; i < 6; i++) fake.register({ id: `s${i}-1`, service: `s${i}`, node: 'node-a', port: 8080 });
      // maxConnections 8 leaves 4 blocking slots for 7 service watches (the 6 and the fake's own `consul`): 3 queue.
      srv = await startServer({ backends: [{ type: 'consul', name: 'c1', address: fake.address, waitSeconds: 2, requestTimeoutMs: 500, maxConnections: 8, fetchConcurrency: 2 }] });
      const s = srv;
      await waitFor(() => s.app.store.status()[0]!.state === 'synced');
      const l = { backend: 'c1' };
      const text = (await waitFor(async () => {
        const t = await s.app.metrics.text();
        // A watch between its reply and its next turn in the queue holds no slot and is not queued: wait for a
        // scrape where every watch is either blocking or queued.
        const slotsNow = metric(t, 'svcdns_consul_blocking_slots', l);
        return metric(t, 'svcdns_consul_watches', l) === 7 && metric(t, 'svcdns_consul_blocking_slots_in_use', l) === slotsNow && metric(t, 'svcdns_consul_watches_queued', l) === 7 - slotsNow! ? t : null;
      }))!;
      const slots = metric(text, 'svcdns_consul_blocking_slots', l)!;
      assert.equal(slots, 8 - 2 - 3 * (1 + 0), 'maxConnections − fetchConcurrency − the catalog, hint and nodes sockets');
      assert.equal(metric(text, 'svcdns_consul_blocking_slots_in_use', l), slots, 'every slot held by a blocking watch');
      assert.equal(metric(text, 'svcdns_consul_watches_queued', l), 7 - slots, 'the other watches wait for a slot');
      const age = metric(text, 'svcdns_consul_catalog_last_reply_age_seconds', l);
      assert.ok(age !== undefined && age >= 0 && age < 3600, `catalog reply age ${age}`);
      promtoolClean(text);
    } finally {
      await srv?.stop();
      await fake.close();
    }
  });
});

// Integration test of end-to-end propagation (issue 14 #4): the real app with a real file backend in a temp
// dir; a change to the file is timed from its change notification to the first DNS answer that reflects it, as
// `svcdns_propagation_seconds{backend}` on /metrics. Observed once per change, not per query. The same for a
// Consul health change (from the blocking query's return) and a Kubernetes watch event (from its arrival),
// against the fakes. With `workers: 2` the worker threads answer and report their first answer of each change.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { answerData, query } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';
import { endpointSlice } from '../fakes/kube-apiserver-fake.ts';
import { withConsulServer, withKubeServer } from '../helpers/registry-server.ts';

/** The file backend waits this long after a change notification before reading: a floor under the measured time. */
const DEBOUNCE_MS = 300;

const file = (addr: string) => `services:\n  - name: web\n    instances:\n      - { address: ${addr}, port: 8080 }\n`;

async function metricsText(srv: TestServer): Promise<string> {
  const a = srv.app.adminAddress;
  assert.ok(a, 'admin server is running');
  const res = await fetch(`http://${a.host}:${a.port}/metrics`);
  return res.text();
}

function sample(text: string, name: string, backend: string): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_:][a-z0-9_:]*)\{(.*)\} (\S+)$/i.exec(line);
    if (m && m[1] === name && m[2]!.split(',').includes(`backend="${backend}"`)) return Number(m[3]);
  }
  return undefined;
}

describe('end-to-end propagation (issue 14 #4)', () => {
  it('svcdns_propagation_seconds{backend} times a file change from its notification (debounce included) to the first answer reflecting it, once per change', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-prop-'));
    let srv: TestServer | null = null;
    try {
      await writeFile(path.join(dir, 'services.yaml'), file('10.0.0.1'));
      srv = await startServer(
        { admin: { listen: '127.0.0.1:0' }, backends: [{ type: 'file', name: 'static', path: 'services.yaml', debounceMs: DEBOUNCE_MS }] },
        { configDir: dir, extra: { serveAdmin: true } },
      );
      const s = srv;
      await waitFor(async () => answerData(await query(s.port, 'web.service.sd.internal', 'A')).includes('10.0.0.1'));
      const before = await metricsText(s);
      const count0 = sample(before, 'svcdns_propagation_seconds_count', 'static') ?? 0;
      const sum0 = sample(before, 'svcdns_propagation_seconds_sum', 'static') ?? 0;
      const t0 = performance.now();
      await writeFile(path.join(dir, 'services.yaml'), file('10.0.0.2'));
      // The first answer with the new address: the change reached DNS.
      await waitFor(async () => answerData(await query(s.port, 'web.service.sd.internal', 'A')).includes('10.0.0.2'));
      const upper = (performance.now() - t0) / 1000;
      // More answers of the same generation observe nothing more.
      for (let i = 0; i < 5; i++) await query(s.port, 'web.service.sd.internal', 'A');
      const text = await metricsText(s);
      assert.match(text, /# TYPE svcdns_propagation_seconds histogram/);
      const count = sample(text, 'svcdns_propagation_seconds_count', 'static');
      const sum = sample(text, 'svcdns_propagation_seconds_sum', 'static');
      assert.equal(count, count0 + 1, 'one observation for the one change');
      assert.ok(sum !== undefined);
      const observed = sum - sum0;
      // Starts at the change notification (so it includes the debounce), after our write began, and ends at the
      // answer the test received.
      assert.ok(observed >= (0.9 * DEBOUNCE_MS) / 1000, `observed ${observed} s includes the ${DEBOUNCE_MS} ms debounce after the notification`);
      assert.ok(observed <= upper, `observed ${observed} s, inside the ${upper} s from write to answer`);
    } finally {
      await srv?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('workers: 2: a change is observed once, by the first worker answer from it, however many workers then answer from it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-prop-workers-'));
    let srv: TestServer | null = null;
    try {
      await writeFile(path.join(dir, 'services.yaml'), file('10.0.0.1'));
      srv = await startServer({ workers: 2, backends: [{ type: 'file', name: 'static', path: 'services.yaml', debounceMs: DEBOUNCE_MS }] }, { configDir: dir });
      const s = srv;
      assert.equal(s.app.workers?.live, 2);
      // Fresh sockets (distinct source ports): the kernel spreads them over both workers (SO_REUSEPORT).
      const fromMany = () => Promise.all(Array.from({ length: 20 }, () => query(s.port, 'web.service.sd.internal', 'A')));
      await waitFor(async () => (await fromMany()).every((r) => answerData(r).includes('10.0.0.1')));
      const before = await s.app.metrics.text();
      const count0 = sample(before, 'svcdns_propagation_seconds_count', 'static') ?? 0;
      const sum0 = sample(before, 'svcdns_propagation_seconds_sum', 'static') ?? 0;
      const t0 = performance.now();
      await writeFile(path.join(dir, 'services.yaml'), file('10.0.0.2'));
      // Every worker answers from the new data: each has served its first answer of it.
      await waitFor(async () => (await fromMany()).every((r) => answerData(r).includes('10.0.0.2')));
      const upper = (performance.now() - t0) / 1000;
      // The worker reports travel to the main thread as messages: wait for the observation, then check it was one.
      const text = await waitFor(async () => {
        const t = await s.app.metrics.text();
        return (sample(t, 'svcdns_propagation_seconds_count', 'static') ?? 0) > count0 ? t : null;
      });
      for (let i = 0; i < 3; i++) await fromMany();
      const again = await s.app.metrics.text();
      assert.equal(sample(again, 'svcdns_propagation_seconds_count', 'static'), count0 + 1, 'one observation for the one change, not one per worker');
      const observed = sample(text!, 'svcdns_propagation_seconds_sum', 'static')! - sum0;
      assert.ok(observed >= (0.9 * DEBOUNCE_MS) / 1000, `observed ${observed} s includes the ${DEBOUNCE_MS} ms debounce`);
      assert.ok(observed <= upper, `observed ${observed} s, inside the ${upper} s from write to answers`);
    } finally {
      await srv?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  /** One change through `change`, seen in DNS: one more observation, positive, within what the test saw. */
  async function oneChange(srv: TestServer, backend: string, name: string, want: string, change: () => void): Promise<void> {
    const before = await metricsText(srv);
    const count0 = sample(before, 'svcdns_propagation_seconds_count', backend) ?? 0;
    const sum0 = sample(before, 'svcdns_propagation_seconds_sum', backend) ?? 0;
    const t0 = performance.now();
    change();
    await waitFor(async () => answerData(await query(srv.port, name, 'A')).includes(want));
    const upper = (performance.now() - t0) / 1000;
    for (let i = 0; i < 5; i++) await query(srv.port, name, 'A');
    const text = await metricsText(srv);
    assert.equal(sample(text, 'svcdns_propagation_seconds_count', backend), count0 + 1, 'one observation for the one change');
    const observed = sample(text, 'svcdns_propagation_seconds_sum', backend)! - sum0;
    assert.ok(observed > 0 && observed <= upper, `observed ${observed} s, inside the ${upper} s from change to answer`);
  }

  it('Consul: a health change is timed from the blocking query\'s return to the first answer, once', async () => {
    await withConsulServer({}, (fake) => {
      fake.addNode({ name: 'node-a', address: '10.0.0.1' });
      fake.addNode({ name: 'node-b', address: '10.0.0.2' });
      fake.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080 });
    }, async (s, fake) => {
      await waitFor(async () => answerData(await query(s.port, 'web.service.sd.internal', 'A')).includes('10.0.0.1'));
      await oneChange(s, 'reg', 'web.service.sd.internal', '10.0.0.2', () => fake.register({ id: 'web-2', service: 'web', node: 'node-b', port: 8080 }));
    });
  });

  it('Kubernetes: a watch event is timed from its arrival to the first answer, once', async () => {
    const slice = (addrs: string[]) => endpointSlice({ namespace: 'default', name: 'web-abc12', service: 'web', ports: [{ name: 'http', port: 8080 }], endpoints: addrs.map((a) => ({ addresses: [a], ready: true })) });
    await withKubeServer({ name: 'k8s' }, (fake) => fake.apply(slice(['10.0.0.1'])), async (s, fake) => {
      await waitFor(async () => answerData(await query(s.port, 'web.service.default.sd.internal', 'A')).includes('10.0.0.1'));
      await oneChange(s, 'k8s', 'web.service.default.sd.internal', '10.0.0.2', () => fake.apply(slice(['10.0.0.1', '10.0.0.2'])));
    });
  });
});

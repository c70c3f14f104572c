// Integration: `workers: 2` across worker restarts (§5.4). A worker killed as a crash would kill it is restarted
// by the pool; it must not accept a query before its store replica holds the main thread's state, or the
// kernel (SO_REUSEPORT) hands it queries that an empty replica answers NXDOMAIN. Real worker threads, real UDP
// from 16 source ports four per millisecond; outcomes are counted, never timed.

import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AnswerProbe, type Outcomes } from '../helpers/answer-probe.ts';
import { HANG_DEADLINE_MS } from '../helpers/deadline.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';
import { ConsulFake } from '../fakes/consul-fake.ts';
import { KubeApiServerFake, endpointSlice } from '../fakes/kube-apiserver-fake.ts';

const NAME = 'web.service.sd.internal';
const ROUNDS = 6;

interface Registry {
  readonly name: string;
  /** The backend entry, with whatever it needs (files, fake servers) created in `dir`. */
  setup(dir: string): Promise<{ backend: Record<string, unknown>; close(): Promise<void> }>;
}

const REGISTRIES: Registry[] = [
  {
    name: 'file backend',
    async setup(dir) {
      const file = join(dir, 'services.yaml');
      writeFileSync(`${file}.tmp`, 'services:\n  - name: web\n    instances:\n      - { address: 10.0.0.1, port: 80 }\n');
      renameSync(`${file}.tmp`, file);
      return { backend: { type: 'file', path: file, debounceMs: 0 }, close: async () => {} };
    },
  },
  {
    name: 'Consul backend',
    async setup() {
      const fake = await ConsulFake.start({ datacenter: 'dc1' });
      fake.addNode({ name: 'node-a', address: '10.0.0.1' });
      fake.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080 });
      return { backend: { type: 'consul', address: fake.address }, close: () => fake.close() };
    },
  },
  {
    name: 'Kubernetes backend',
    async setup(dir) {
      const fake = await KubeApiServerFake.start();
      fake.apply(endpointSlice({ namespace: 'default', name: 'web-1', service: 'web', ports: [{ name: 'http', port: 80 }], endpoints: [{ addresses: ['10.0.0.1'] }] }));
      writeFileSync(join(dir, 'kubeconfig'), fake.kubeconfig());
      return { backend: { type: 'kubernetes', kubeconfig: join(dir, 'kubeconfig'), defaultScope: 'default' }, close: () => fake.stop() };
    },
  },
];

describe('workers: restarts under a query loop (§5.4)', () => {
  for (const reg of REGISTRIES) {
    it(`§5.4 ${reg.name}: killing a worker ${ROUNDS} times under a query loop (4/ms): no NXDOMAIN, no SERVFAIL, no NODATA while it restarts`, { timeout: (ROUNDS + 2) * HANG_DEADLINE_MS }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'svcdns-lifecycle-workers-'));
      let s: TestServer | null = null;
      let probe: AnswerProbe | null = null;
      let registry: { backend: Record<string, unknown>; close(): Promise<void> } | null = null;
      try {
        registry = await reg.setup(dir);
        s = await startServer({ workers: 2, backends: [registry.backend] }, { configDir: dir });
        const srv = s;
        // 4 queries per millisecond: the window this guards against (bound, state not yet applied) is a few ms.
        probe = await AnswerProbe.start(srv.port, NAME, 'A', { perTick: 4 });
        await probe.answers(100, 'before the first kill');
        const before = probe.total;
        assert.equal(before.nxdomain, 0, probe.report());
        for (let round = 0; round < ROUNDS; round++) {
          probe.phase = `restart of worker ${round % 2}`;
          await srv.app.workers!.kill(round % 2);
          await waitFor(() => srv.app.workers!.live === 2);
          // Enough answers after it is back that its sockets (half the source ports) answered some.
          await probe.answers(200, `after restart ${round}`);
        }
        for (let round = 0; round < ROUNDS; round++) {
          const o: Outcomes = probe.byPhase.get(`restart of worker ${round % 2}`)!;
          assert.equal(o.nxdomain, 0, `no NXDOMAIN: ${probe.report()}`);
          assert.equal(o.servfail + o.nodata + o.other, 0, `only answers: ${probe.report()}`);
        }
      } finally {
        probe?.stop();
        await s?.stop();
        await registry?.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

// test/integration/consul-scale: 5,000 Consul services through the real server. The fake runs in a child process
// so the RSS figure is the server's own. Reports time to full sync, RSS/heap delta, peak sockets to the agent
// (bounded by maxConnections), and how long a health flip of one service among 5,000 takes to reach DNS.

import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { startServer, waitFor } from '../helpers/server.ts';

const SERVICES = 5000;

/** A real GC before reading heap figures, so they show what is retained rather than garbage not yet collected. */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MAX_CONNECTIONS = 128;

class FakeProcess {
  readonly #child: ChildProcess;
  #next = 1;
  readonly #pending = new Map<number, (r: unknown) => void>();
  readonly ready: Promise<{ port: number }>;
  constructor() {
    this.#child = fork(fileURLToPath(new URL('../fakes/consul-fake.ts', import.meta.url)), [], {
      execArgv: ['--disable-warning=ExperimentalWarning'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((resolve) => this.#pending.set(0, resolve as (r: unknown) => void));
    this.#child.on('message', (m: { id: number; result: unknown }) => {
      this.#pending.get(m.id)?.(m.result);
      this.#pending.delete(m.id);
    });
  }
  call<T>(msg: Record<string, unknown>): Promise<T> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve as (r: unknown) => void);
      this.#child.send({ id, ...msg });
    });
  }
  async close(): Promise<void> {
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.#child.send({ id: -1, op: 'close' });
    await exited;
  }
}

it(`${SERVICES} services: full sync, memory, bounded sockets, a flip among them`, { timeout: 240_000 }, async () => {
  const fake = new FakeProcess();
  const { port } = await fake.ready;
  await fake.call({ op: 'seed', services: SERVICES, nodes: 50 });
  gc();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const srv = await startServer({
    backends: [{ type: 'consul', address: `127.0.0.1:${port}`, maxConnections: MAX_CONNECTIONS, waitSeconds: 60 }],
  });
  try {
    await waitFor(() => srv.app.store.status()[0]!.state === 'synced', 120_000, 20);
    const syncMs = performance.now() - t0;
    gc();
    const mem = process.memoryUsage();
    const st = srv.app.store.status()[0]!;
    assert.equal(st.services, SERVICES + 1); // + consul
    assert.deepEqual(answerData(await query(srv.port, `svc-4999.service.sd.internal`, 'A'), 'A'), ['10.0.49.1']);
    assert.deepEqual(answerData(await query(srv.port, `odd.svc-4999.service.sd.internal`, 'A'), 'A'), ['10.0.49.1']);

    // One flip among 5,000 watches sharing the blocking slots.
    const flips: number[] = [];
    for (const i of [1234, 4321, 77]) {
      const name = `svc-${i}.service.sd.internal`;
      const t1 = performance.now();
      await fake.call({ op: 'setCheck', serviceId: `svc-${i}-1`, status: 'critical' });
      await waitFor(async () => (await query(srv.port, name, 'A')).answers?.length === 0, 60_000, 5);
      flips.push(performance.now() - t1);
      assert.equal(rcode(await query(srv.port, name, 'A')), 'NOERROR');
    }
    const stats = await fake.call<{ peakConnections: number; openConnections: number; held: number }>({ op: 'stats' });
    console.log(
      `consul scale: ${SERVICES} services synced in ${syncMs.toFixed(0)} ms; RSS +${((mem.rss - rss0) / 1048576).toFixed(1)} MiB, ` +
        `heap retained after GC +${((mem.heapUsed - heap0) / 1048576).toFixed(1)} MiB; peak sockets to agent ${stats.peakConnections} ` +
        `(maxConnections ${MAX_CONNECTIONS}); flip → DNS ${flips.map((f) => f.toFixed(0)).join(', ')} ms`,
    );
    assert.ok(stats.peakConnections <= MAX_CONNECTIONS, `peak ${stats.peakConnections}`);
  } finally {
    await srv.stop();
    await fake.close();
  }
});

// e2e: what a resolver sees across the whole life of real svcdns processes (§5.4). A loop sends
// `web.service.sd.internal A` about once per millisecond from before the process is spawned; every answer is
// counted by outcome. Start and restart (stop, start again on the same port) may answer SERVFAIL before the
// first sync but never NXDOMAIN or NODATA; a reload that changes a backend answers neither NXDOMAIN nor SERVFAIL;
// the lameduck keeps answering with /readyz 503. File, Consul (fake agent) and Kubernetes (fake API server)
// backends, and `workers: 2`. The tests count outcomes and wait for events; they never time anything.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AnswerProbe } from '../helpers/answer-probe.ts';
import { HANG_DEADLINE_MS } from '../helpers/deadline.ts';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { ConsulFake } from '../fakes/consul-fake.ts';
import { KubeApiServerFake, endpointSlice } from '../fakes/kube-apiserver-fake.ts';
import { collect, freePort, pollUntil, spawnSvcdns, tempDir } from './harness.ts';

const NAME = 'web.service.sd.internal';
/** Answers to wait for after each step: enough that both workers (16 source ports) answered some. */
const ANSWERS = 100;
const TEST_TIMEOUT_MS = 4 * HANG_DEADLINE_MS;

interface Proc {
  readonly child: ReturnType<typeof spawnSvcdns>;
  readonly exited: Promise<number | null>;
  /** The admin port, from the `listening` log line. */
  readonly admin: Promise<number>;
  output(): string;
  kill(): void;
}

function spawnOn(cfgPath: string): Proc {
  const child = spawnSvcdns(['--config', cfgPath, '--log-level', 'info']);
  const io = collect(child);
  // Event-driven, no polling timer: resolved by the `listening` log line, rejected when the child exits first, so
  // nothing is left running after a test whose child never listened.
  const admin = new Promise<number>((resolve, reject) => {
    const scan = () => {
      for (const line of io.stdout().split('\n')) {
        if (!line.startsWith('{')) continue;
        const rec = JSON.parse(line) as { event?: string; admin?: { port: number } | null };
        if (rec.event === 'listening' && rec.admin) {
          child.stdout?.off('data', scan);
          resolve(rec.admin.port);
          return;
        }
      }
    };
    child.stdout?.on('data', scan);
    void io.exited.then((code) => {
      child.stdout?.off('data', scan);
      reject(new Error(`svcdns exited ${code} before it logged its listening addresses: ${io.stderr()}${io.stdout()}`));
    });
  });
  admin.catch(() => {}); // awaited by the tests that need it
  return {
    child,
    exited: io.exited,
    admin,
    output: () => io.stdout() + io.stderr(),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Log records (JSON lines) a process wrote, for matching an event and its code. */
function records(p: Proc): { event?: string; code?: string }[] {
  return p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event?: string; code?: string });
}

async function metricValue(adminPort: number, re: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
}
const RELOAD_OK = /svcdns_config_reloads_total\{result="success"\} (\d+)/;
const RELOAD_FAILED = /svcdns_config_reloads_total\{result="failure"\} (\d+)/;

/** One backend setup: its registry (real fake servers), the `backends:` YAML, and a changed variant of it. */
interface Variant {
  readonly name: string;
  readonly workers?: number;
  setup(dir: string): Promise<{ backends: string; changed: string; close(): Promise<void> }>;
}

const fileVariant = (workers?: number): Variant => ({
  name: workers ? `file backend, workers: ${workers}` : 'file backend',
  ...(workers ? { workers } : {}),
  async setup(dir) {
    writeFileSync(join(dir, 'a.yaml'), 'services:\n  - name: web\n    instances:\n      - { address: 10.0.0.1, port: 80 }\n');
    writeFileSync(join(dir, 'b.yaml'), 'services:\n  - name: web\n    instances:\n      - { address: 10.0.0.2, port: 80 }\n');
    return {
      backends: `  - { type: file, name: static, path: a.yaml, debounceMs: 0 }\n`,
      // Another file with other data: the answer shows when the new instance took over.
      changed: `  - { type: file, name: static, path: b.yaml, debounceMs: 0 }\n`,
      close: async () => {},
    };
  },
});

const consulVariant: Variant = {
  name: 'Consul backend',
  async setup() {
    const fake = await ConsulFake.start({ datacenter: 'dc1' });
    fake.addNode({ name: 'node-a', address: '10.0.0.1' });
    fake.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080 });
    return {
      backends: `  - { type: consul, name: consul, address: "${fake.address}" }\n`,
      changed: `  - { type: consul, name: consul, address: "${fake.address}", waitSeconds: 30 }\n`,
      close: () => fake.close(),
    };
  },
};

const kubernetesVariant: Variant = {
  name: 'Kubernetes backend',
  async setup(dir) {
    const fake = await KubeApiServerFake.start();
    fake.apply(endpointSlice({ namespace: 'default', name: 'web-1', service: 'web', ports: [{ name: 'http', port: 80 }], endpoints: [{ addresses: ['10.0.0.1'] }] }));
    writeFileSync(join(dir, 'kubeconfig'), fake.kubeconfig());
    return {
      backends: `  - { type: kubernetes, name: k8s, kubeconfig: kubeconfig, defaultScope: default }\n`,
      changed: `  - { type: kubernetes, name: k8s, kubeconfig: kubeconfig, defaultScope: default, namespaces: [default] }\n`,
      close: () => fake.stop(),
    };
  },
};

const VARIANTS = [fileVariant(), consulVariant, kubernetesVariant, fileVariant(2)];

function writeConfig(dir: string, dnsPort: number, v: Variant, backends: string, extra = ''): string {
  const p = join(dir, 'svcdns.yaml');
  writeFileSync(p, `listen: "127.0.0.1:${dnsPort}"\nadmin: { listen: "127.0.0.1:0" }\n${v.workers ? `workers: ${v.workers}\n` : ''}${extra}backends:\n${backends}`);
  return p;
}

describe('lifecycle: answers from spawn to exit (§5.4)', () => {
  for (const v of VARIANTS) {
    test(`§5.4 ${v.name}: spawn and restart on the same port under a 1/ms query loop answer no NXDOMAIN, no NODATA`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const tmp = tempDir();
      const reg = await v.setup(tmp.dir);
      const port = await freePort();
      const cfg = writeConfig(tmp.dir, port, v, reg.backends);
      const probe = await AnswerProbe.start(port, NAME);
      const procs: Proc[] = [];
      try {
        probe.phase = 'first start';
        procs.push(spawnOn(cfg));
        await probe.answers(ANSWERS, 'after the first start');
        probe.phase = 'restart';
        procs[0]!.child.kill('SIGTERM');
        assert.equal(await procs[0]!.exited, 0);
        procs.push(spawnOn(cfg));
        await probe.answers(ANSWERS, 'after the restart');
        const t = probe.total;
        assert.equal(t.nxdomain, 0, `no NXDOMAIN from spawn to answers, twice: ${probe.report()}`);
        assert.equal(t.nodata, 0, `no NODATA either: ${probe.report()}`);
        assert.equal(t.other, 0, probe.report());
      } finally {
        probe.stop();
        for (const p of procs) p.kill();
        await Promise.all(procs.map((p) => p.exited));
        await reg.close();
        tmp.cleanup();
      }
    });
  }

  for (const v of VARIANTS) {
    test(`§5.4 ${v.name}: a reload that changes the backend (SIGHUP) under the loop answers no NXDOMAIN and no SERVFAIL`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const tmp = tempDir();
      const reg = await v.setup(tmp.dir);
      const port = await freePort();
      const cfg = writeConfig(tmp.dir, port, v, reg.backends);
      const probe = await AnswerProbe.start(port, NAME);
      const p = spawnOn(cfg);
      try {
        await probe.answers(ANSWERS, 'after the start');
        const admin = await p.admin;
        probe.phase = 'reload';
        writeConfig(tmp.dir, port, v, reg.changed);
        p.child.kill('SIGHUP');
        await pollUntil('the reload to be counted', async () => (await metricValue(admin, RELOAD_OK)) === 1, HANG_DEADLINE_MS);
        if (v.name.startsWith('file')) {
          // The new instance took over: every source port (every worker) sees its data.
          await pollUntil('the changed backend to answer', async () => answerData(await query(port, NAME, 'A'), 'A').join() === '10.0.0.2', HANG_DEADLINE_MS);
        }
        probe.phase = 'after the reload';
        await probe.answers(ANSWERS, 'after the reload');
        for (const phase of ['reload', 'after the reload']) {
          const o = probe.byPhase.get(phase) ?? { answer: 0, nodata: 0, nxdomain: 0, servfail: 0, other: 0 };
          assert.equal(o.nxdomain, 0, `${phase}: no NXDOMAIN: ${probe.report()}`);
          assert.equal(o.servfail, 0, `${phase}: no SERVFAIL (make-before-break): ${probe.report()}`);
          assert.equal(o.nodata + o.other, 0, `${phase}: ${probe.report()}`);
        }
        assert.equal(probe.total.nxdomain, 0, probe.report());
        assert.equal(await metricValue(admin, RELOAD_FAILED), 0);
      } finally {
        probe.stop();
        p.kill();
        await p.exited;
        await reg.close();
        tmp.cleanup();
      }
    });
  }

  test('§5.4 a changed backend that fails its first sync fails the reload; the running one answers throughout', { timeout: TEST_TIMEOUT_MS }, async () => {
    const tmp = tempDir();
    const fake = await ConsulFake.start({ datacenter: 'dc1' });
    fake.addNode({ name: 'node-a', address: '10.0.0.1' });
    fake.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080 });
    const closedPort = await freePort(); // nothing listens there: the new instance's first request is refused
    const port = await freePort();
    const v: Variant = { name: 'consul', setup: async () => ({ backends: '', changed: '', close: async () => {} }) };
    const cfg = writeConfig(tmp.dir, port, v, `  - { type: consul, name: consul, address: "${fake.address}" }\n`);
    const probe = await AnswerProbe.start(port, NAME);
    const p = spawnOn(cfg);
    try {
      await probe.answers(ANSWERS, 'after the start');
      const admin = await p.admin;
      probe.phase = 'failed reload';
      writeConfig(tmp.dir, port, v, `  - { type: consul, name: consul, address: "127.0.0.1:${closedPort}" }\n`);
      p.child.kill('SIGHUP');
      await pollUntil('the reload to be counted as failed', async () => (await metricValue(admin, RELOAD_FAILED)) === 1, HANG_DEADLINE_MS);
      await probe.answers(ANSWERS, 'after the failed reload');
      const o = probe.byPhase.get('failed reload')!;
      assert.equal(o.servfail + o.nxdomain + o.nodata + o.other, 0, `the old instance kept answering: ${probe.report()}`);
      assert.equal(await metricValue(admin, RELOAD_OK), 0);
      const failed = records(p).find((r) => r.event === 'config_reload_failed');
      assert.equal(failed?.code, 'SVCDNS_RELOAD_FIRST_SYNC_FAILED');
      // Still the old instance, still following its agent.
      fake.addNode({ name: 'node-b', address: '10.0.0.2' });
      fake.register({ id: 'web-2', service: 'web', node: 'node-b', port: 8080 });
      await pollUntil('the running backend to follow its agent', async () => answerData(await query(port, NAME, 'A'), 'A').sort().join() === '10.0.0.1,10.0.0.2', HANG_DEADLINE_MS);
    } finally {
      probe.stop();
      p.kill();
      await p.exited;
      await fake.close();
      tmp.cleanup();
    }
  });

  test('§5.4 lameduck: after SIGTERM /readyz is 503 at once while UDP and TCP keep answering; a second signal exits at once', { timeout: TEST_TIMEOUT_MS }, async () => {
    const tmp = tempDir();
    const v = fileVariant();
    const reg = await v.setup(tmp.dir);
    const port = await freePort();
    // Longer than any test: the lameduck is ended by the second signal, so nothing here depends on its length.
    const cfg = writeConfig(tmp.dir, port, v, reg.backends, 'shutdown: { lameDuckMs: 600000 }\n');
    const probe = await AnswerProbe.start(port, NAME);
    const p = spawnOn(cfg);
    try {
      await probe.answers(ANSWERS, 'after the start');
      const admin = await p.admin;
      assert.equal((await fetch(`http://127.0.0.1:${admin}/readyz`)).status, 200);
      probe.phase = 'lameduck';
      p.child.kill('SIGTERM');
      const ready = await pollUntil('/readyz to turn 503', async () => {
        const res = await fetch(`http://127.0.0.1:${admin}/readyz`);
        return res.status === 503 ? ((await res.json()) as { draining: boolean }) : null;
      }, HANG_DEADLINE_MS);
      assert.equal(ready.draining, true);
      assert.equal((await fetch(`http://127.0.0.1:${admin}/healthz`)).status, 200, 'alive: the kubelet must not restart it');
      for (const tcp of [false, true]) {
        const r = await query(port, NAME, 'A', { tcp });
        assert.equal(rcode(r), 'NOERROR');
        assert.deepEqual(answerData(r, 'A'), ['10.0.0.1'], `answered over ${tcp ? 'TCP' : 'UDP'} during the lameduck`);
      }
      await probe.answers(ANSWERS, 'during the lameduck');
      assert.equal((await fetch(`http://127.0.0.1:${admin}/readyz`)).status, 503, 'still draining');
      const o = probe.byPhase.get('lameduck')!;
      assert.equal(o.servfail + o.nxdomain + o.nodata + o.other, 0, probe.report());
      p.child.kill('SIGTERM');
      assert.equal(await p.exited, 1, 'the second signal does not wait for the lameduck');
    } finally {
      probe.stop();
      p.kill();
      await p.exited;
      await reg.close();
      tmp.cleanup();
    }
  });

  test('§5.4 lameduck, then drain: the process exits 0 by itself, answering until its sockets close', { timeout: TEST_TIMEOUT_MS }, async () => {
    const tmp = tempDir();
    const v = fileVariant(2);
    const reg = await v.setup(tmp.dir);
    const port = await freePort();
    const cfg = writeConfig(tmp.dir, port, v, reg.backends, 'shutdown: { lameDuckMs: 300 }\n');
    const probe = await AnswerProbe.start(port, NAME);
    const p = spawnOn(cfg);
    try {
      await probe.answers(ANSWERS, 'after the start');
      probe.phase = 'stopping';
      p.child.kill('SIGTERM');
      assert.equal(await p.exited, 0);
      assert.ok(records(p).some((r) => r.event === 'lameduck'), 'went through the lameduck');
      const o = probe.byPhase.get('stopping') ?? { answer: 0, nodata: 0, nxdomain: 0, servfail: 0, other: 0 };
      assert.equal(o.servfail + o.nxdomain + o.nodata + o.other, 0, probe.report());
      assert.equal(probe.total.nxdomain, 0, probe.report());
    } finally {
      probe.stop();
      p.kill();
      await p.exited;
      await reg.close();
      tmp.cleanup();
    }
  });
});

// The shipped deploy/kubernetes ConfigMap config, run by the real CLI as the container would (only the listen
// addresses moved to loopback): $KUBECONFIG → the API server fake; /readyz turns 200 once the EndpointSlice
// informer synced (the Deployment's readiness probe); DNS answers; SIGTERM exits 0.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { waitFor } from '../helpers/server.ts';
import { KubeApiServerFake, endpointSlice } from '../fakes/kube-apiserver-fake.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A free TCP port on loopback (the CLI needs fixed ports in its config; UDP on the same number is free in practice). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('kubernetes: the shipped ConfigMap config through the real CLI', () => {
  it('SERVFAIL/503 before the first LIST, then ready and answering; SIGTERM exits 0', async () => {
    const fake = await KubeApiServerFake.start();
    fake.apply(endpointSlice({ namespace: 'default', name: 'web-1', service: 'web', ports: [{ name: 'http', port: 80 }], endpoints: [{ addresses: ['10.0.0.1'] }] }));
    fake.forbid('endpointslices', 'list'); // hold the first sync back so "not ready" is observable
    const dir = mkdtempSync(join(tmpdir(), 'svcdns-k8s-cli-'));
    writeFileSync(join(dir, 'kc'), fake.kubeconfig());
    const [dns, admin] = [await freePort(), await freePort()];
    // The ConfigMap's content: configMapGenerator in deploy/kubernetes/kustomization.yaml builds it from this file.
    const shipped = readFileSync(join(ROOT, 'deploy/kubernetes/config/svcdns.yaml'), 'utf8');
    const cfg = shipped.replace('0.0.0.0:8053', `127.0.0.1:${dns}`).replace('0.0.0.0:8654', `127.0.0.1:${admin}`);
    assert.notEqual(cfg, shipped);
    writeFileSync(join(dir, 'svcdns.yaml'), cfg);
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', join(ROOT, 'src/cli.ts'), '--config', join(dir, 'svcdns.yaml'), '--log-level', 'silent'], {
      env: { PATH: process.env.PATH, KUBECONFIG: join(dir, 'kc') },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${admin}/healthz`)).status === 200);
      assert.equal((await fetch(`http://127.0.0.1:${admin}/readyz`)).status, 503);
      assert.equal(rcode(await query(dns, 'web.service.sd.internal', 'A')), 'SERVFAIL');
      fake.allow('endpointslices', 'list');
      await waitFor(async () => (await fetch(`http://127.0.0.1:${admin}/readyz`)).status === 200);
      assert.deepEqual(answerData(await query(dns, 'web.service.sd.internal', 'A'), 'A'), ['10.0.0.1']);
      assert.deepEqual(answerData(await query(dns, 'web.service.default.sd.internal', 'A', { tcp: true }), 'A'), ['10.0.0.1']);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      // Runs even when an assertion above failed: nothing this test started may outlive it.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await fake.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

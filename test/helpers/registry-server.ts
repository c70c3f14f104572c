// test/helpers/registry-server: svcdns with its admin server on 127.0.0.1:0 and one backend reading a registry
// fake: the Consul fake, or the Kubernetes API fake through a kubeconfig in a temporary directory. Everything
// started is stopped and removed after the body, also when the body fails.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConsulFake } from '../fakes/consul-fake.ts';
import { KubeApiServerFake } from '../fakes/kube-apiserver-fake.ts';
import { startServer, type TestServer } from './server.ts';

/** `seed` runs on the fake before svcdns starts; `backend` adds to `{ type: 'kubernetes', kubeconfig }`. */
export async function withKubeServer(
  backend: Record<string, unknown>,
  seed: (fake: KubeApiServerFake) => void,
  body: (srv: TestServer, fake: KubeApiServerFake) => Promise<void>,
): Promise<void> {
  const fake = await KubeApiServerFake.start();
  const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-kube-'));
  let srv: TestServer | null = null;
  try {
    await writeFile(path.join(dir, 'kubeconfig'), fake.kubeconfig());
    seed(fake);
    srv = await startServer(
      { admin: { listen: '127.0.0.1:0' }, backends: [{ type: 'kubernetes', kubeconfig: 'kubeconfig', ...backend }] },
      { configDir: dir, extra: { serveAdmin: true } },
    );
    await body(srv, fake);
  } finally {
    await srv?.stop();
    await fake.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A `type: consul` backend named `reg` (short waits: waitSeconds 2, requestTimeoutMs 500) on the Consul fake,
 * `seed` run before svcdns starts; `raw` adds top-level config (e.g. `workers`).
 */
export async function withConsulServer(
  raw: Record<string, unknown>,
  seed: (fake: ConsulFake) => void,
  body: (srv: TestServer, fake: ConsulFake) => Promise<void>,
): Promise<void> {
  const fake = await ConsulFake.start();
  let srv: TestServer | null = null;
  try {
    seed(fake);
    srv = await startServer(
      { admin: { listen: '127.0.0.1:0' }, ...raw, backends: [{ type: 'consul', name: 'reg', address: fake.address, waitSeconds: 2, requestTimeoutMs: 500 }] },
      { extra: { serveAdmin: true } },
    );
    await body(srv, fake);
  } finally {
    await srv?.stop();
    await fake.close();
  }
}

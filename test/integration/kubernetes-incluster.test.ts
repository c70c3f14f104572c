// In-cluster configuration end to end: HTTPS API server (the fake with a throwaway certificate), the service
// account's ca.crt and token files, KUBERNETES_SERVICE_HOST/PORT — the path every pod of the Deployment takes.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Backoff } from '../../src/backends/backoff.ts';
import { configSchema } from '../../src/backends/kubernetes/index.ts';
import { chooseSource } from '../../src/backends/kubernetes/kubeconfig.ts';
import { KubernetesBackend } from '../../src/backends/kubernetes/watcher.ts';
import { KubeApiServerFake, RecordingSink, endpointSlice } from '../fakes/kube-apiserver-fake.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** A self-signed certificate for 127.0.0.1 (what the cluster CA would sign for the API server's Service IP). */
function selfSigned(dir: string): { key: string; cert: string } {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=kubernetes', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
}

describe('kubernetes in-cluster config over HTTPS', () => {
  let dir: string;
  let tls: { key: string; cert: string };
  let fake: KubeApiServerFake;
  before(async () => {
    dir = tempDir('svcdns-incluster-');
    tls = selfSigned(dir);
    fake = await KubeApiServerFake.start({ tls, token: 'sa-token' });
    fake.apply(endpointSlice({ namespace: 'default', name: 'web-1', service: 'web', ports: [{ name: 'http', port: 80 }], endpoints: [{ addresses: ['10.0.0.1'] }] }));
  });
  after(() => fake.stop());

  function backend(saDir: string) {
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(fake.port) };
    const source = chooseSource({}, '/', env);
    assert.equal(source.kind, 'in-cluster');
    return new KubernetesBackend(
      configSchema.parse({ type: 'kubernetes', defaultScope: 'default' }),
      { ...source, saDir } as typeof source,
      pino({ level: 'silent' }),
      { backoff: () => new Backoff({ initialMs: 20, maxMs: 100 }) },
    );
  }

  it('service-account token + ca.crt: lists and watches over verified TLS', async () => {
    const sa = tempDir('svcdns-sa-');
    writeFileSync(join(sa, 'token'), 'sa-token');
    writeFileSync(join(sa, 'ca.crt'), tls.cert);
    const b = backend(sa);
    const sink = new RecordingSink();
    b.start(sink);
    try {
      await fake.waitFor(() => sink.snapshots.length === 1 && fake.openWatches === 1, 'sync + watch');
      assert.deepEqual(sink.addresses('default', 'web'), ['10.0.0.1']);
      fake.apply(endpointSlice({ namespace: 'default', name: 'web-1', service: 'web', endpoints: [{ addresses: ['10.0.0.2'] }] }));
      await fake.waitFor(() => sink.addresses('default', 'web')?.join() === '10.0.0.2', 'watch event over TLS');
    } finally {
      await b.stop();
    }
  });

  it('an untrusted server certificate is SVCDNS_BACKEND_CONFIG; a missing token file too', async () => {
    const other = selfSigned(tempDir('svcdns-ca2-'));
    const sa = tempDir('svcdns-sa-');
    writeFileSync(join(sa, 'token'), 'sa-token');
    writeFileSync(join(sa, 'ca.crt'), other.cert);
    const b = backend(sa);
    const sink = new RecordingSink();
    b.start(sink);
    try {
      await fake.waitFor(() => sink.errors.length >= 1, 'TLS error');
      assert.equal(sink.errors[0]!.code, 'SVCDNS_BACKEND_CONFIG');
      assert.match(sink.errors[0]!.message, /TLS certificate is not trusted/);
      assert.equal(sink.snapshots.length, 0);
    } finally {
      await b.stop();
    }
    const noToken = backend(tempDir('svcdns-sa-'));
    const sink2 = new RecordingSink();
    noToken.start(sink2);
    try {
      await fake.waitFor(() => sink2.errors.length >= 1, 'token error');
      assert.equal(sink2.errors[0]!.code, 'SVCDNS_BACKEND_CONFIG');
      assert.match(sink2.errors[0]!.message, /token/);
    } finally {
      await noToken.stop();
    }
  });
});

// test/integration/consul-tls: the consul backend over HTTPS with a private CA, a client certificate and a server
// name that differs from the address (Consul's usual `server.<dc>.consul` certificates). Certificates are made
// at test time with the openssl CLI into a temp dir.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { configSchema } from '../../src/backends/consul/config.ts';
import { ConsulBackend } from '../../src/backends/consul/consul.ts';
import { ConsulFake } from '../fakes/consul-fake.ts';
import { waitFor } from '../helpers/server.ts';
import { RecordingSink as Sink } from '../helpers/recording-sink.ts';

const dir = mkdtempSync(join(tmpdir(), 'svcdns-consul-tls-'));
const p = (f: string) => join(dir, f);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

function makePki(): void {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca-key.pem'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=test consul CA');
  for (const [name, ext] of [
    ['server', 'subjectAltName=DNS:server.dc1.consul,DNS:localhost\nextendedKeyUsage=serverAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    writeFileSync(p(`${name}.ext`), `${ext}\n`);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}-key.pem`), '-out', p(`${name}.csr`), '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.pem'), '-CAkey', p('ca-key.pem'), '-CAcreateserial', '-out', p(`${name}.pem`), '-days', '2', '-extfile', p(`${name}.ext`));
  }
}


describe('consul over TLS', () => {
  let fake: ConsulFake;
  before(async () => {
    makePki();
    fake = await ConsulFake.start({
      tls: { key: readFileSync(p('server-key.pem')), cert: readFileSync(p('server.pem')), ca: readFileSync(p('ca.pem')), requireClientCert: true },
    });
    fake.addNode({ name: 'node-a', address: '10.0.0.1' });
    fake.register({ id: 'web-1', service: 'web', node: 'node-a', port: 443 });
  });
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(raw: Record<string, unknown>, env: Record<string, string> = {}) {
    const cfg = configSchema.parse({ type: 'consul', address: `https://127.0.0.1:${fake.port}`, requestTimeoutMs: 1000, ...raw });
    const b = new ConsulBackend(cfg, { logger: pino({ level: 'silent' }), configDir: dir, env });
    const sink = new Sink();
    b.start(sink);
    return { b, sink };
  }

  it('CA file, client cert/key and serverName: syncs', async () => {
    const { b, sink } = await run({ tls: { caFile: 'ca.pem', certFile: 'client.pem', keyFile: 'client-key.pem', serverName: 'server.dc1.consul' } });
    try {
      await waitFor(() => sink.snapshots.length > 0);
      assert.equal(sink.snapshots[0]!.services.get('dc1/web')?.instances[0]?.address, '10.0.0.1');
    } finally {
      await b.stop();
    }
  });

  it('the same from CONSUL_CACERT / CONSUL_CLIENT_CERT / CONSUL_CLIENT_KEY / CONSUL_TLS_SERVER_NAME', async () => {
    const { b, sink } = await run(
      {},
      { CONSUL_CACERT: 'ca.pem', CONSUL_CLIENT_CERT: 'client.pem', CONSUL_CLIENT_KEY: 'client-key.pem', CONSUL_TLS_SERVER_NAME: 'server.dc1.consul' },
    );
    try {
      await waitFor(() => sink.snapshots.length > 0);
    } finally {
      await b.stop();
    }
  });

  it('no client certificate, or a server name the certificate does not carry: UNREACHABLE, no snapshot', async () => {
    for (const tls of [
      { caFile: 'ca.pem', serverName: 'server.dc1.consul' },
      { caFile: 'ca.pem', certFile: 'client.pem', keyFile: 'client-key.pem', serverName: 'server.dc9.consul' },
      { certFile: 'client.pem', keyFile: 'client-key.pem', serverName: 'server.dc1.consul' }, // unknown CA
    ]) {
      const { b, sink } = await run({ tls });
      try {
        const err = (await waitFor(() => sink.errors[0], 5000))!;
        assert.equal(err.code, 'SVCDNS_BACKEND_UNREACHABLE', JSON.stringify(tls));
        assert.equal(sink.snapshots.length, 0);
      } finally {
        await b.stop();
      }
    }
  });

  it('a missing CA file: SVCDNS_BACKEND_CONFIG, retried', async () => {
    const { b, sink } = await run({ tls: { caFile: 'missing.pem' } });
    try {
      const err = (await waitFor(() => sink.errors[0], 3000))!;
      assert.equal(err.code, 'SVCDNS_BACKEND_CONFIG');
      assert.equal(err.details['file'], join(dir, 'missing.pem'));
    } finally {
      await b.stop();
    }
  });
});

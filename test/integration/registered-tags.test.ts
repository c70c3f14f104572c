// §2.2 over real DNS with the static-file backend, and the Consul and Kubernetes translations: a tag or port name
// that no registered instance carries answers NXDOMAIN; one carried only by unhealthy instances answers NODATA
// (§5.3), and `_T.service.D` exists as an empty non-terminal for it (§2.5).

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildService, fromEndpointSlice } from '../../src/backends/kubernetes/translate.ts';
import { signature, translateHealth } from '../../src/backends/consul/translate.ts';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';
import { ConsulFake } from '../fakes/consul-fake.ts';

const D = 'sd.internal';

const SERVICES = `services:
  - name: web
    instances:
      - address: 10.0.0.1
        ports: { http: 80 }
        tags: [primary]
      - address: 10.0.0.2
        ports: { admin: 9000 }
        tags: [retired]
        healthy: false
`;

describe('§2.2 file backend: tags and port names of unhealthy instances are known, others are not', () => {
  let dir: string;
  let srv: TestServer | undefined;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'svcdns-tags-'));
    await writeFile(path.join(dir, 'services.yaml'), SERVICES);
    srv = await startServer({ backends: [{ type: 'file', path: 'services.yaml' }] }, { configDir: dir });
    await waitFor(() => !srv!.app.store.anyPending);
  });
  after(async () => {
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const expect = async (name: string, type: string, want: 'NXDOMAIN' | 'NODATA' | 'DATA') => {
    const r = await query(srv!.port, name, type);
    const got = rcode(r) === 'NOERROR' ? (r.answers!.length > 0 ? 'DATA' : 'NODATA') : rcode(r);
    assert.equal(got, want, `${name} ${type}`);
  };

  it('§2.2 carried by a healthy instance: answered; only by an unhealthy one: NODATA (§5.3); by none: NXDOMAIN', async () => {
    await expect(`primary.web.service.${D}`, 'A', 'DATA');
    await expect(`http.web.service.${D}`, 'SRV', 'DATA');
    await expect(`retired.web.service.${D}`, 'A', 'NODATA');
    await expect(`admin.web.service.${D}`, 'SRV', 'NODATA');
    await expect(`_web._retired.service.${D}`, 'SRV', 'NODATA');
    await expect(`_admin._tcp.web.service.${D}`, 'SRV', 'NODATA');
    await expect(`bogus.web.service.${D}`, 'A', 'NXDOMAIN');
    await expect(`_web._bogus.service.${D}`, 'SRV', 'NXDOMAIN');
    await expect(`_bogus._tcp.web.service.${D}`, 'SRV', 'NXDOMAIN');
  });

  it('§2.5 `_T.service.D` exists for a tag only an unhealthy instance carries, not for an unknown one', async () => {
    await expect(`_retired.service.${D}`, 'A', 'NODATA');
    await expect(`_primary.service.${D}`, 'A', 'NODATA');
    await expect(`_bogus.service.${D}`, 'A', 'NXDOMAIN');
  });
});

describe('§2.2 Consul over DNS: a tag of a critical instance is NODATA, an unknown tag NXDOMAIN', () => {
  it('§2.2 §5.3 tags follow the whole health reply, and a tag that goes with its last carrier turns NXDOMAIN', async () => {
    const fake = await ConsulFake.start();
    let srv: TestServer | undefined;
    try {
      fake.addNode({ name: 'node-a', address: '10.0.0.1' });
      fake.addNode({ name: 'node-b', address: '10.0.0.2' });
      fake.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080, tags: ['primary'] });
      fake.register({ id: 'web-2', service: 'web', node: 'node-b', port: 8080, tags: ['retired'] });
      fake.setCheck('web-2', 'critical');
      srv = await startServer({ backends: [{ type: 'consul', address: fake.address, waitSeconds: 2, requestTimeoutMs: 500 }] }, { env: {} });
      const s = srv;
      await waitFor(() => s.app.store.status()[0]!.state === 'synced');
      assert.deepEqual(answerData(await query(s.port, `primary.web.service.${D}`, 'A'), 'A'), ['10.0.0.1']);
      const retired = await query(s.port, `retired.web.service.${D}`, 'A');
      assert.equal(rcode(retired), 'NOERROR');
      assert.equal(retired.answers!.length, 0);
      assert.equal(rcode(await query(s.port, `_retired.service.${D}`, 'A')), 'NOERROR', '§2.5 the tag\'s empty non-terminal');
      assert.equal(rcode(await query(s.port, `bogus.web.service.${D}`, 'A')), 'NXDOMAIN');
      // The critical instance is deregistered: nobody carries the tag any more.
      fake.deregister('web-2');
      await waitFor(async () => rcode(await query(s.port, `retired.web.service.${D}`, 'A')) === 'NXDOMAIN');
      assert.equal(rcode(await query(s.port, `_retired.service.${D}`, 'A')), 'NXDOMAIN');
    } finally {
      await srv?.stop();
      await fake.close();
    }
  });
});

describe('§2.2 backends report the tags of instances they do not serve', () => {
  it('Consul: tags of a critical instance are known tags, and a change to them changes the signature', () => {
    const entry = (id: string, addr: string, tags: string[], status: string) => ({
      Node: { Node: `n-${id}`, Address: addr },
      Service: { ID: id, Service: 'web', Tags: tags, Address: '', Port: 80 },
      Checks: [{ Node: `n-${id}`, CheckID: `service:${id}`, Status: status, ServiceID: id }],
    });
    const warn = () => {};
    const t = translateHealth([entry('a', '10.0.0.1', ['primary'], 'passing'), entry('b', '10.0.0.2', ['Retired', 'v1.2'], 'critical')], {
      name: 'web', scope: 'dc1', onlyPassing: false, warn,
    });
    assert.deepEqual(t.instances.map((i) => i.address), ['10.0.0.1']);
    assert.deepEqual(t.knownTags, ['primary', 'retired']);
    const u = translateHealth([entry('a', '10.0.0.1', ['primary'], 'passing'), entry('b', '10.0.0.2', ['other'], 'critical')], {
      name: 'web', scope: 'dc1', onlyPassing: false, warn,
    });
    assert.notEqual(signature(t.instances, undefined, t.knownTags), signature(u.instances, undefined, u.knownTags));
  });

  it('Kubernetes: a slice with no ready endpoint still makes its port names known', () => {
    const slice = {
      metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }, { name: 'metrics', protocol: 'TCP', port: 9100 }],
      endpoints: [{ addresses: ['10.1.0.1'], conditions: { ready: false } }],
    };
    const c = fromEndpointSlice(slice)!;
    const svc = buildService('default', 'web', [c], undefined);
    assert.equal(svc.instances.length, 0);
    assert.deepEqual(svc.knownTags, ['http', 'metrics']);
    // An unchanged object keeps its identity (the store diffs by identity); new port names make a new one.
    assert.equal(buildService('default', 'web', [c], svc), svc);
    const renamed = fromEndpointSlice({ ...slice, ports: [{ name: 'web', protocol: 'TCP', port: 80 }] })!;
    assert.notEqual(buildService('default', 'web', [renamed], svc), svc);
  });
});

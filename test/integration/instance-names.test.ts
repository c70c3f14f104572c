// Per-instance names `<instance>.N.service[.S].D` (dns-behaviour.md §2.6) and `srvTarget` (§3.2) over real UDP
// to a listening server, and the answer cache dropping exactly what a renamed instance touched (§6.4).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { inst, put, startStack, svc, type Stack } from '../helpers/stack.ts';
import type { DnsMetrics } from '../../src/dns/processor.ts';
import type { Instance } from '../../src/model/service.ts';
import { instanceLabel } from '../../src/model/names.ts';
import { parseServicesFile } from '../../src/backends/file/parse.ts';
import { fromEndpointSlice, fromEndpoints } from '../../src/backends/kubernetes/translate.ts';
import { translateHealth } from '../../src/backends/consul/translate.ts';

const D = 'sd.internal';
const named = (name: string, i: Instance): Instance => ({ ...i, name });

function data(s: Stack) {
  put(s.store, 'static', [
    {
      ...svc('web', [
        named('web-1', inst('10.0.0.1', [8080], { tags: ['primary'] })),
        named('web-2', inst('10.0.0.2', [8080, 8443])),
        named('primary', inst('10.0.0.4', [8080])), // same label as a tag: the tag wins (§2.6)
        inst('10.0.0.5', [8080]), // no name
      ]),
      knownTags: ['primary', 'retired'],
    },
    svc('api', [named('api-a', inst('fd00::1:1', ['http:80']))]),
    svc('web', [named('web-1', inst('10.1.0.1', [8080]))], { scope: 'staging' }),
  ]);
}

describe('instance names (§2.6)', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
    data(s);
  });
  after(() => s.stop());

  it('§2.6 <instance>.N.service.D answers that instance only: A, its SRV ports with glue, NODATA for the other family', async () => {
    const a = await query(s.port, `web-1.web.service.${D}`, 'A');
    assert.equal(rcode(a), 'NOERROR');
    assert.equal(a.flag_aa, true);
    assert.deepEqual(answerData(a), ['10.0.0.1']);
    const srv = await query(s.port, `web-2.web.service.${D}`, 'SRV');
    assert.deepEqual(answerData(srv), [`1 1 8080 10-0-0-2.addr.${D}`, `1 1 8443 10-0-0-2.addr.${D}`]);
    assert.deepEqual((srv.additionals ?? []).filter((r) => r.type === 'A').map((r) => `${r.name} ${String(r.data)}`), [`10-0-0-2.addr.${D} 10.0.0.2`]);
    const aaaa = await query(s.port, `web-1.web.service.${D}`, 'AAAA');
    assert.equal(rcode(aaaa), 'NOERROR');
    assert.deepEqual(aaaa.answers, []);
    assert.equal(aaaa.authorities![0]!.type, 'SOA');
    const v6 = await query(s.port, `api-a.api.service.${D}`, 'AAAA');
    assert.deepEqual(answerData(v6), ['fd00::1:1']);
  });

  it('§2.6 §2.1 scoped names: <instance>.N.service.S.D answers the instance of that scope', async () => {
    assert.deepEqual(answerData(await query(s.port, `web-1.web.service.staging.${D}`, 'A')), ['10.1.0.1']);
    assert.deepEqual(answerData(await query(s.port, `web-1.web.service.default.${D}`, 'A')), ['10.0.0.1']);
    assert.equal(rcode(await query(s.port, `web-2.web.service.staging.${D}`, 'A')), 'NXDOMAIN');
  });

  it('§2.6 §2.2 tags win over instance names; a label that is neither (or an unknown instance) is NXDOMAIN', async () => {
    // `primary` is a tag of 10.0.0.1 and the name of 10.0.0.4: the tag answers.
    assert.deepEqual(answerData(await query(s.port, `primary.web.service.${D}`, 'A')), ['10.0.0.1']);
    // `retired` is a tag only unhealthy instances carry: NODATA, as before (§2.2).
    const retired = await query(s.port, `retired.web.service.${D}`, 'A');
    assert.equal(rcode(retired), 'NOERROR');
    assert.deepEqual(retired.answers, []);
    for (const n of ['web-9', 'api-a']) {
      const r = await query(s.port, `${n}.web.service.${D}`, 'A');
      assert.equal(rcode(r), 'NXDOMAIN', n);
      assert.equal(r.authorities![0]!.type, 'SOA');
    }
  });

  it('§2.6 §6.1 a name answers only while its instance is healthy, and the next query after a change shows it', async () => {
    assert.deepEqual(answerData(await query(s.port, `web-2.web.service.${D}`, 'A')), ['10.0.0.2']);
    put(s.store, 'static', [svc('web', [named('web-1', inst('10.0.0.1', [8080], { tags: ['primary'] }))])]);
    try {
      assert.equal(rcode(await query(s.port, `web-2.web.service.${D}`, 'A')), 'NXDOMAIN');
    } finally {
      data(s);
    }
    assert.deepEqual(answerData(await query(s.port, `web-2.web.service.${D}`, 'A')), ['10.0.0.2']);
  });

  it('§2.6 instance names are host-name labels: lowercased, others rejected (no name), never rewritten', () => {
    assert.equal(instanceLabel('Web-1'), 'web-1');
    assert.equal(instanceLabel('pod-7f9c'), 'pod-7f9c');
    for (const bad of ['web_1', 'a.b', '-x', 'x-', '', 'redis:10.0.0.1:6379', 'a'.repeat(64)]) assert.equal(instanceLabel(bad), null, bad);
  });

  it('§2.6 a services-file `id` is the instance name; a bad or duplicate id is a located error', () => {
    const ok = parseServicesFile('services:\n  - name: web\n    instances:\n      - { id: Web-1, address: 10.0.0.1, port: 80 }\n', 's.yaml', 'default');
    assert.equal(ok.services[0]!.instances[0]!.name, 'web-1');
    assert.throws(
      () => parseServicesFile('services:\n  - name: web\n    instances:\n      - { id: web_1, address: 10.0.0.1, port: 80 }\n', 's.yaml', 'default'),
      (e: Error & { code?: string }) => e.code === 'SVCDNS_BACKEND_BAD_DATA' && /s\.yaml: line 4: services\[0\]\.instances\[0\]\.id/.test(e.message),
    );
    assert.throws(
      () => parseServicesFile('services:\n  - name: web\n    instances:\n      - { id: a, address: 10.0.0.1, port: 80 }\n      - { id: a, address: 10.0.0.2, port: 80 }\n', 's.yaml', 'default'),
      (e: Error & { code?: string }) => e.code === 'SVCDNS_BACKEND_BAD_DATA' && /instances\[1\]\.id: .*duplicates instances\[0\]\.id/.test(e.message),
    );
  });
});

describe('instance names from each backend (§2.6)', () => {
  it('§2.6 Kubernetes: the endpoint hostname, else the Pod name of targetRef; a non-label is no name', () => {
    const slice = {
      metadata: { name: 'web-abc', namespace: 'prod', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
      endpoints: [
        { addresses: ['10.0.0.1'], hostname: 'Web-0', targetRef: { kind: 'Pod', name: 'web-7f9c-x' } },
        { addresses: ['10.0.0.2'], targetRef: { kind: 'Pod', name: 'web-7f9c-y' } },
        { addresses: ['10.0.0.3'], targetRef: { kind: 'Node', name: 'node-1' } },
        { addresses: ['10.0.0.4'], targetRef: { kind: 'Pod', name: 'pod.with.dots' } },
      ],
    };
    const c = fromEndpointSlice(slice)!;
    assert.deepEqual(c.endpoints.map((i) => `${i.address} ${i.name ?? '-'}`), ['10.0.0.1 web-0', '10.0.0.2 web-7f9c-y', '10.0.0.3 -', '10.0.0.4 -']);
    const legacy = fromEndpoints({
      metadata: { name: 'web', namespace: 'prod' },
      subsets: [{ addresses: [{ ip: '10.0.0.9', hostname: 'web-9' }, { ip: '10.0.0.8', targetRef: { kind: 'Pod', name: 'p-8' } }], ports: [{ port: 80 }] }],
    })!;
    assert.deepEqual(legacy.endpoints.map((i) => `${i.address} ${i.name ?? '-'}`), ['10.0.0.8 p-8', '10.0.0.9 web-9']);
  });

  it('§2.6 Consul: the service ID (not the node name; several instances share a node), when it is a host-name label', () => {
    const entry = (id: string, address: string) => ({
      Node: { Node: 'node-1', Address: '10.0.0.1' },
      Service: { ID: id, Service: 'web', Address: address, Port: 80, Tags: [] },
      Checks: [],
    });
    const t = translateHealth([entry('web-a', '10.0.0.1'), entry('web:10.0.0.2:80', '10.0.0.2')], { name: 'web', scope: 'dc1', onlyPassing: false, warn() {} });
    assert.deepEqual(t.instances.map((i) => `${i.address} ${i.name ?? '-'}`).sort(), ['10.0.0.1 web-a', '10.0.0.2 -']);
  });
});

describe('srvTarget: instance (§3.2)', () => {
  it('§3.2 §2.6 SRV targets are instance names where one answers exactly that address, else .addr; glue follows the target', async () => {
    const s = await startStack({ answer: { srvTarget: 'instance' } });
    try {
      put(s.store, 'static', [
        svc('web', [
          named('web-1', inst('10.0.0.1', [8080])),
          inst('10.0.0.5', [8080]), // no name: .addr
          named('dup', inst('10.0.0.6', [8080])),
          named('dup', inst('10.0.0.7', [8080])), // one name, two addresses: .addr for both
        ]),
      ]);
      const r = await query(s.port, `web.service.${D}`, 'SRV');
      assert.deepEqual(answerData(r), [
        `1 1 8080 10-0-0-5.addr.${D}`,
        `1 1 8080 10-0-0-6.addr.${D}`,
        `1 1 8080 10-0-0-7.addr.${D}`,
        `1 1 8080 web-1.web.service.${D}`,
      ]);
      const glue = (r.additionals ?? []).filter((x) => x.type === 'A').map((x) => `${x.name} ${String(x.data)}`).sort();
      assert.deepEqual(glue, [
        `10-0-0-5.addr.${D} 10.0.0.5`,
        `10-0-0-6.addr.${D} 10.0.0.6`,
        `10-0-0-7.addr.${D} 10.0.0.7`,
        `web-1.web.service.${D} 10.0.0.1`,
      ]);
      // The target resolves to the glue's address.
      assert.deepEqual(answerData(await query(s.port, `web-1.web.service.${D}`, 'A')), ['10.0.0.1']);
    } finally {
      await s.stop();
    }
  });

  it('§3.2 the default stays .addr targets even for named instances', async () => {
    const s = await startStack();
    try {
      put(s.store, 'static', [svc('web', [named('web-1', inst('10.0.0.1', [8080]))])]);
      assert.deepEqual(answerData(await query(s.port, `web.service.${D}`, 'SRV')), [`1 1 8080 10-0-0-1.addr.${D}`]);
    } finally {
      await s.stop();
    }
  });
});

describe('answer cache and instance names (§6.4)', () => {
  it('§6.4 renaming one instance drops the answers that read its service and its PTR, and nothing else', async () => {
    let hits = 0;
    let misses = 0;
    const metrics: DnsMetrics = { response() {}, cache: (hit) => (hit ? hits++ : misses++), internalError() {} };
    const s = await startStack({ answer: { order: 'fixed', reverseZones: ['10.in-addr.arpa'] }, metrics });
    try {
      const web = (n: string) => svc('web', [named(n, inst('10.0.0.1', [8080])), named('web-2', inst('10.0.0.2', [8080]))]);
      const api = svc('api', [named('api-1', inst('10.0.1.1', [80]))]);
      put(s.store, 'b', [web('web-1'), api]);
      const asked: [string, string][] = [
        [`web-1.web.service.${D}`, 'A'],
        [`web-new.web.service.${D}`, 'A'],
        ['1.0.0.10.in-addr.arpa', 'PTR'],
        [`api-1.api.service.${D}`, 'A'],
        [`api.service.${D}`, 'A'],
        ['1.1.0.10.in-addr.arpa', 'PTR'],
        ['2.0.0.10.in-addr.arpa', 'PTR'],
      ];
      const answers = async () => {
        const out: string[] = [];
        for (const [n, t] of asked) {
          const r = await query(s.port, n, t);
          out.push(`${n} ${t} ${rcode(r)} ${answerData(r).join(',')}`);
        }
        return out;
      };
      assert.deepEqual(await answers(), [
        `web-1.web.service.${D} A NOERROR 10.0.0.1`,
        `web-new.web.service.${D} A NXDOMAIN `,
        `1.0.0.10.in-addr.arpa PTR NOERROR web-1.web.service.${D}`,
        `api-1.api.service.${D} A NOERROR 10.0.1.1`,
        `api.service.${D} A NOERROR 10.0.1.1`,
        `1.1.0.10.in-addr.arpa PTR NOERROR api-1.api.service.${D}`,
        `2.0.0.10.in-addr.arpa PTR NOERROR web-2.web.service.${D}`,
      ]);
      await answers(); // all cached now
      hits = 0;
      misses = 0;
      put(s.store, 'b', [web('web-new'), api]); // same Service object for api: only web changed
      assert.deepEqual(await answers(), [
        `web-1.web.service.${D} A NXDOMAIN `,
        `web-new.web.service.${D} A NOERROR 10.0.0.1`,
        `1.0.0.10.in-addr.arpa PTR NOERROR web-new.web.service.${D}`,
        `api-1.api.service.${D} A NOERROR 10.0.1.1`,
        `api.service.${D} A NOERROR 10.0.1.1`,
        `1.1.0.10.in-addr.arpa PTR NOERROR api-1.api.service.${D}`,
        `2.0.0.10.in-addr.arpa PTR NOERROR web-2.web.service.${D}`,
      ]);
      // Dropped: the two web names and 10.0.0.1's PTR. Kept: api's three answers and 10.0.0.2's PTR (its
      // instance did not change), so 4 hits.
      assert.equal(misses, 3, `misses ${misses}`);
      assert.equal(hits, 4, `hits ${hits}`);

      // An address change: 10.0.0.2 → 10.0.0.3. Its old PTR goes NXDOMAIN, the new one answers.
      const asked2: [string, string][] = [['2.0.0.10.in-addr.arpa', 'PTR'], ['3.0.0.10.in-addr.arpa', 'PTR'], ['1.1.0.10.in-addr.arpa', 'PTR']];
      for (const [n, t] of asked2) await query(s.port, n, t);
      put(s.store, 'b', [svc('web', [named('web-new', inst('10.0.0.1', [8080])), named('web-2', inst('10.0.0.3', [8080]))]), api]);
      hits = 0;
      misses = 0;
      const got: string[] = [];
      for (const [n, t] of asked2) {
        const r = await query(s.port, n, t);
        got.push(`${n} ${rcode(r)} ${answerData(r).join(',')}`);
      }
      assert.deepEqual(got, [
        '2.0.0.10.in-addr.arpa NXDOMAIN ',
        `3.0.0.10.in-addr.arpa NOERROR web-2.web.service.${D}`,
        `1.1.0.10.in-addr.arpa NOERROR api-1.api.service.${D}`,
      ]);
      assert.equal(hits, 1, `the api PTR stays cached (hits ${hits})`);
    } finally {
      await s.stop();
    }
  });
});

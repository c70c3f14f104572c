// Unit tests for backends/kubernetes/translate: which endpoints are served (§6.1) and how slices/subsets merge
// into one Service whose named ports serve §2.2 and §2.3b. Objects follow the shapes of real API objects.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  REASON_FQDN,
  REASON_NOT_IP,
  REASON_NOT_IPV6,
  REASON_NOT_READY,
  REASON_TERMINATING,
  REASON_TERMINATING_SERVING,
  buildService,
  fromEndpointSlice,
  fromEndpoints,
  type Contribution,
} from '../../src/backends/kubernetes/translate.ts';

/** The kubernetes.io docs sample EndpointSlice, with a namespace (the API always sets one). */
const docsSlice = {
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'example-abc', namespace: 'default', labels: { 'kubernetes.io/service-name': 'example' } },
  addressType: 'IPv4',
  ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
  endpoints: [{ addresses: ['10.1.2.3'], conditions: { ready: true }, hostname: 'pod-1', nodeName: 'node-1', zone: 'us-west2-a' }],
};

/** A rollout caught mid-termination (shape of the GKE capture in the termination tutorial). */
const terminatingSlice = {
  addressType: 'IPv4',
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: 'nginx-service-6tjbr', namespace: 'default', labels: { 'kubernetes.io/service-name': 'nginx-service' } },
  endpoints: [
    { addresses: ['10.12.1.201'], conditions: { ready: false, serving: true, terminating: true }, targetRef: { kind: 'Pod', name: 'a' } },
    { addresses: ['10.12.1.202'], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', name: 'b' } },
    { addresses: ['10.12.1.203'], conditions: {} }, // ready absent = ready (API: nil means unknown, treat as ready)
    { addresses: ['10.12.1.204'], conditions: { ready: false, serving: false, terminating: false } }, // not yet ready
  ],
  ports: [{ name: '', port: 80, protocol: 'TCP' }],
};

const build = (cs: (Contribution | null)[]) => {
  const list = cs.filter((c): c is Contribution => c !== null);
  return buildService(list[0]!.scope, list[0]!.service, list, undefined);
};

describe('kubernetes translate: EndpointSlice (§6.1)', () => {
  it('the docs sample: one ready endpoint with its named port (no tags: port names are matched as such, §2.2), named by its Pod (§2.6)', () => {
    const c = fromEndpointSlice(docsSlice)!;
    assert.equal(c.scope, 'default');
    assert.equal(c.service, 'example');
    const svc = build([c]);
    assert.deepEqual(svc.instances, [
      { address: '10.1.2.3', family: 4, ports: [{ name: 'http', port: 80, protocol: 'tcp' }], weight: 1, tags: [], name: 'pod-1' },
    ]);
  });

  it('serves ready=true and ready absent; never ready=false, never terminating', () => {
    const svc = build([fromEndpointSlice(terminatingSlice)]);
    assert.deepEqual(svc.instances.map((i) => i.address), ['10.12.1.202', '10.12.1.203']);
    // unnamed port ("" in the API): SRV only via the protocol forms
    assert.deepEqual(svc.instances[0]!.ports, [{ name: null, port: 80, protocol: 'tcp' }]);
  });

  it('a terminating endpoint still marked ready (publishNotReadyAddresses) is not served', () => {
    const s = structuredClone(docsSlice);
    s.endpoints.push({ addresses: ['10.1.2.4'], conditions: { ready: true, terminating: true } } as never);
    assert.deepEqual(build([fromEndpointSlice(s)]).instances.map((i) => i.address), ['10.1.2.3']);
  });

  it('IPv6 slices give family 6 with RFC 5952 text; addresses of the wrong family and FQDN slices are skipped', () => {
    const v6 = { ...structuredClone(docsSlice), addressType: 'IPv6', endpoints: [{ addresses: ['FD00:0:0:0::0A'], conditions: { ready: true } }, { addresses: ['10.9.9.9'] }] };
    const c = fromEndpointSlice(v6)!;
    assert.deepEqual(c.endpoints.map((e) => [e.address, e.family]), [['fd00::a', 6]]);
    assert.equal(c.skipped, 1);
    const fqdn = { ...structuredClone(docsSlice), addressType: 'FQDN', endpoints: [{ addresses: ['db.example.com'] }] };
    assert.deepEqual(fromEndpointSlice(fqdn)!.endpoints, []);
  });

  it('several slices of one Service merge, addresses de-duplicated, port sets unioned per address', () => {
    const a = { ...structuredClone(docsSlice), metadata: { ...docsSlice.metadata, name: 'example-a' }, endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.2'] }] };
    const b = { ...structuredClone(docsSlice), metadata: { ...docsSlice.metadata, name: 'example-b' }, endpoints: [{ addresses: ['10.0.0.2'] }, { addresses: ['10.0.0.3'] }] };
    const c = {
      ...structuredClone(docsSlice),
      metadata: { ...docsSlice.metadata, name: 'example-c' },
      ports: [{ name: 'metrics', port: 9090, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }, { name: 'sctp', port: 9, protocol: 'SCTP' }],
      endpoints: [{ addresses: ['10.0.0.1'] }],
    };
    const svc = build([fromEndpointSlice(a), fromEndpointSlice(b), fromEndpointSlice(c)]);
    assert.deepEqual(svc.instances.map((i) => i.address), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    const first = svc.instances[0]!;
    assert.deepEqual(
      first.ports.map((p) => `${p.name}:${p.port}/${p.protocol}`).sort(),
      ['dns:53/udp', 'http:80/tcp', 'metrics:9090/tcp'],
    );
    assert.equal(fromEndpointSlice(c)!.skipped, 1, 'SCTP has no SRV form');
  });

  it('a slice without the kubernetes.io/service-name label belongs to no Service', () => {
    assert.equal(fromEndpointSlice({ ...docsSlice, metadata: { name: 'x', namespace: 'default', labels: {} } }), null);
  });

  it('an empty slice (Service with no pods) is a known service with no instances (§5.3)', () => {
    const svc = build([fromEndpointSlice({ ...docsSlice, endpoints: null })]);
    assert.deepEqual(svc.instances, []);
  });

  it('buildService returns the previous object when nothing changed (store diffs by identity)', () => {
    const c = fromEndpointSlice(docsSlice)!;
    const first = buildService('default', 'example', [c], undefined);
    assert.equal(buildService('default', 'example', [fromEndpointSlice(structuredClone(docsSlice))!], first), first);
    const changed = structuredClone(docsSlice);
    changed.endpoints[0]!.addresses = ['10.1.2.4'];
    assert.notEqual(buildService('default', 'example', [fromEndpointSlice(changed)!], first), first);
  });
});

describe('kubernetes translate: legacy Endpoints (§6.1)', () => {
  it('addresses only, never notReadyAddresses; subsets with different named ports (linkerd rollout shape)', () => {
    const ep = {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { labels: { app: 'name1' }, name: 'name1', namespace: 'ns' },
      subsets: [
        {
          addresses: [{ ip: '172.17.0.1', nodeName: 'name1-1' }, { ip: '172.17.0.2', nodeName: 'name1-2' }],
          ports: [{ name: 'port1', port: 8989, protocol: 'TCP' }],
        },
        {
          addresses: [{ ip: '172.17.0.1', nodeName: 'name1-1' }],
          notReadyAddresses: [{ ip: '172.17.0.2', nodeName: 'name1-2' }],
          ports: [{ name: 'port2', port: 9999, protocol: 'TCP' }],
        },
      ],
    };
    const svc = build([fromEndpoints(ep)]);
    assert.equal(svc.scope, 'ns');
    assert.equal(svc.name, 'name1');
    assert.deepEqual(
      svc.instances.map((i) => [i.address, i.ports.map((p) => p.name).join(',')]),
      [['172.17.0.1', 'port1,port2'], ['172.17.0.2', 'port1']],
    );
  });

  it('mixed IPv4/IPv6 addresses in one subset (headless service shape); subsets: null is a known empty service', () => {
    const ep = {
      kind: 'Endpoints',
      metadata: { name: 'headless-svc', namespace: 'test-1' },
      subsets: [{ addresses: [{ ip: '172.17.0.255' }, { ip: '1234:abcd::1' }], ports: [{ port: 1234, name: 'c-port', protocol: 'UDP' }] }],
    };
    const svc = build([fromEndpoints(ep)]);
    assert.deepEqual(svc.instances.map((i) => [i.address, i.family]), [['1234:abcd::1', 6], ['172.17.0.255', 4]]);
    assert.deepEqual(svc.instances[0]!.ports, [{ name: 'c-port', port: 1234, protocol: 'udp' }]);
    assert.deepEqual(build([fromEndpoints({ kind: 'Endpoints', metadata: { name: 'empty-subset', namespace: 'greg-test' }, subsets: null })]).instances, []);
  });

  it('a port without a protocol is TCP (API default)', () => {
    const ep = { metadata: { name: 'kubernetes', namespace: 'default' }, subsets: [{ addresses: [{ ip: '104.154.78.240' }], ports: [{ port: 443 }] }] };
    assert.deepEqual(build([fromEndpoints(ep)]).instances[0]!.ports, [{ name: null, port: 443, protocol: 'tcp' }]);
  });
});

describe('kubernetes translate: Service.unhealthy, endpoints not served and why (§6.1, the status page)', () => {
  it('EndpointSlice conditions: terminating (serving or not) and not ready, named by hostname or Pod; ready ones are not listed', () => {
    const c = fromEndpointSlice(terminatingSlice)!;
    const svc = build([c]);
    assert.deepEqual(svc.instances.map((i) => i.address), ['10.12.1.202', '10.12.1.203']);
    assert.deepEqual(svc.unhealthy, [
      { address: '10.12.1.201', name: 'a', reason: REASON_TERMINATING_SERVING },
      { address: '10.12.1.204', reason: REASON_NOT_READY },
    ]);
    assert.equal(REASON_TERMINATING_SERVING, 'terminating (serving: true)');
    const s = structuredClone(terminatingSlice);
    s.endpoints[0]!.conditions = { ready: false, serving: false, terminating: true };
    assert.deepEqual(build([fromEndpointSlice(s)]).unhealthy![0], { address: '10.12.1.201', name: 'a', reason: REASON_TERMINATING });
    // All ready: no list (nothing allocated for healthy endpoints).
    assert.equal(fromEndpointSlice(docsSlice)!.unhealthy, undefined);
    assert.equal(build([fromEndpointSlice(docsSlice)]).unhealthy, undefined);
  });

  it('addresses dropped by validation are listed with the reason (wrong family for the slice, FQDN slices)', () => {
    const v6 = { ...structuredClone(docsSlice), addressType: 'IPv6', endpoints: [{ addresses: ['FD00:0:0:0::0A'], conditions: { ready: true } }, { addresses: ['10.9.9.9'] }] };
    assert.deepEqual(fromEndpointSlice(v6)!.unhealthy, [{ address: '10.9.9.9', reason: REASON_NOT_IPV6 }]);
    const fqdn = { ...structuredClone(docsSlice), addressType: 'FQDN', endpoints: [{ addresses: ['db.example.com'] }] };
    assert.deepEqual(fromEndpointSlice(fqdn)!.unhealthy, [{ address: 'db.example.com', reason: REASON_FQDN }]);
  });

  it('legacy Endpoints: notReadyAddresses are listed as not ready, unless another subset serves the address', () => {
    const ep = {
      kind: 'Endpoints',
      metadata: { name: 'name1', namespace: 'ns' },
      subsets: [
        { addresses: [{ ip: '172.17.0.1' }, { ip: '172.17.0.2' }], ports: [{ name: 'port1', port: 8989, protocol: 'TCP' }] },
        {
          addresses: [{ ip: '172.17.0.1' }, { ip: 'not-an-ip' }],
          notReadyAddresses: [{ ip: '172.17.0.2' }, { ip: '172.17.0.3', hostname: 'db-3', targetRef: { kind: 'Pod', name: 'db-3-pod' } }],
          ports: [{ name: 'port2', port: 9999, protocol: 'TCP' }],
        },
      ],
    };
    const svc = build([fromEndpoints(ep)]);
    assert.deepEqual(svc.instances.map((i) => i.address), ['172.17.0.1', '172.17.0.2']);
    assert.deepEqual(svc.unhealthy, [
      { address: '172.17.0.3', name: 'db-3', reason: REASON_NOT_READY },
      { address: 'not-an-ip', reason: REASON_NOT_IP },
    ]);
  });

  it('several slices merge their unhealthy lists; an address ready in one slice is not listed from another', () => {
    const a = { ...structuredClone(docsSlice), metadata: { ...docsSlice.metadata, name: 'example-a' }, endpoints: [{ addresses: ['10.0.0.1'] }, { addresses: ['10.0.0.9'], conditions: { ready: false } }] };
    const b = { ...structuredClone(docsSlice), metadata: { ...docsSlice.metadata, name: 'example-b' }, endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: false } }, { addresses: ['10.0.0.5'], conditions: { terminating: true } }] };
    const svc = build([fromEndpointSlice(a), fromEndpointSlice(b)]);
    assert.deepEqual(svc.instances.map((i) => i.address), ['10.0.0.1']);
    assert.deepEqual(svc.unhealthy, [
      { address: '10.0.0.5', reason: REASON_TERMINATING },
      { address: '10.0.0.9', reason: REASON_NOT_READY },
    ]);
  });

  it('buildService: the same unhealthy set keeps the object; a change in it alone is a new object with the same served arrays', () => {
    const c1 = fromEndpointSlice(terminatingSlice)!;
    const prev = buildService(c1.scope, c1.service, [c1], undefined);
    assert.equal(buildService(c1.scope, c1.service, [fromEndpointSlice(structuredClone(terminatingSlice))!], prev), prev);
    const s = structuredClone(terminatingSlice);
    s.endpoints[3]!.conditions = { ready: false, serving: false, terminating: true }; // 10.12.1.204 now terminating
    const next = buildService(c1.scope, c1.service, [fromEndpointSlice(s)!], prev);
    assert.notEqual(next, prev);
    assert.equal(next.instances, prev.instances);
    assert.equal(next.knownTags, prev.knownTags);
    assert.deepEqual(next.unhealthy!.map((u) => u.reason), [REASON_TERMINATING_SERVING, REASON_TERMINATING]);
    // Reasons are the module's constants, not strings built per endpoint.
    assert.equal(next.unhealthy![1]!.reason, REASON_TERMINATING);
  });
});

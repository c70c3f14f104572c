// Unit tests of the static services file parser: shapes, canonical forms, and that every rejection names the
// file, the key path and the rule (architecture rule 5) with code SVCDNS_BACKEND_BAD_DATA.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { BackendError } from '../../src/backends/backend.ts';
import { configSchema, parseServicesFile } from '../../src/backends/file/index.ts';

const F = 'config/services.yaml';

function parse(text: string, file = F) {
  return parseServicesFile(text, file, 'default');
}

function rejects(text: string, file = F): BackendError {
  try {
    parse(text, file);
  } catch (err) {
    assert.ok(err instanceof BackendError, `expected BackendError, got ${String(err)}`);
    assert.equal(err.code, 'SVCDNS_BACKEND_BAD_DATA');
    assert.ok(err.message.startsWith(`${file}: `), `message names the file: ${err.message}`);
    return err;
  }
  assert.fail('expected the file to be rejected');
}

const one = (instance: string) => `services:\n  - name: web\n    instances:\n      - ${instance}\n`;

describe('file backend: sample config/services.yaml (README promise)', () => {
  const file = parse(readFileSync(new URL('../../config/services.yaml', import.meta.url), 'utf8'));
  const svc = (scope: string, name: string) => {
    const s = file.services.find((x) => x.scope === scope && x.name === name);
    assert.ok(s, `${scope}/${name} present`);
    return s;
  };

  it('web: 3 IPv4 instances on 8080, tags primary/canary, 10.0.0.3 unhealthy (§6.1)', () => {
    const web = svc('default', 'web');
    assert.deepEqual(
      web.instances.map((i) => [i.address, i.family, i.ports, i.tags, i.healthy]),
      [
        ['10.0.0.1', 4, [{ name: null, port: 8080, protocol: 'tcp' }], ['primary'], true],
        ['10.0.0.2', 4, [{ name: null, port: 8080, protocol: 'tcp' }], ['canary'], true],
        ['10.0.0.3', 4, [{ name: null, port: 8080, protocol: 'tcp' }], [], false],
      ],
    );
  });

  it('api: one IPv4 and one IPv6 instance with named ports http 80 and grpc 9090', () => {
    const api = svc('default', 'api');
    const ports = [
      { name: 'http', port: 80, protocol: 'tcp' },
      { name: 'grpc', port: 9090, protocol: 'tcp' },
    ];
    assert.deepEqual(
      api.instances.map((i) => [i.address, i.family, i.ports, i.healthy]),
      [
        ['10.0.1.1', 4, ports, true],
        ['fd00::1:1', 6, ports, true],
      ],
    );
  });

  it('db: registered with no healthy instance (§5.3), and a scoped web in staging', () => {
    const db = svc('default', 'db');
    assert.ok(db.instances.length > 0);
    assert.ok(db.instances.every((i) => !i.healthy));
    assert.deepEqual(svc('staging', 'web').instances.map((i) => i.address), ['10.1.0.1']);
  });
});

describe('file backend: parsing valid files', () => {
  it('canonicalises addresses and lowercases labels; applies defaults', () => {
    const f = parse(`services:
  - name: API
    scope: Prod
    ttlSeconds: 30
    tags: [Front, shared]
    instances:
      - address: FD00:0:0:0::1:1
        ports: { HTTP: 80 }
        tags: [shared, Blue]
      - address: " 10.0.0.7 "
`);
    assert.deepEqual(f.services, [
      {
        name: 'api',
        scope: 'prod',
        ttlSeconds: 30,
        instances: [
          {
            address: 'fd00::1:1',
            family: 6,
            ports: [{ name: 'http', port: 80, protocol: 'tcp' }],
            weight: 1,
            tags: ['front', 'shared', 'blue'],
            healthy: true,
            check: null,
          },
          { address: '10.0.0.7', family: 4, ports: [], weight: 1, tags: ['front', 'shared'], healthy: true, check: null },
        ],
      },
    ]);
  });

  it('accepts the port list form with udp, weights, and checks with defaults', () => {
    const f = parse(one(`address: 10.0.0.1
        ports: [{ name: dns, port: 53, protocol: udp }, { port: 53 }]
        weight: 65535
        check: { tcp: 53 }`));
    const i = f.services[0]!.instances[0]!;
    assert.deepEqual(i.ports, [
      { name: 'dns', port: 53, protocol: 'udp' },
      { name: null, port: 53, protocol: 'tcp' },
    ]);
    assert.equal(i.weight, 65535);
    assert.deepEqual(i.check, { kind: 'tcp', host: '10.0.0.1', port: 53, intervalMs: 10_000, timeoutMs: 2_000 });
  });

  it('accepts http checks and tcp checks on another ip:port', () => {
    const f = parse(`services:
  - name: a
    instances:
      - address: 10.0.0.1
        check: { http: "http://10.0.0.1:8080/health", intervalMs: 500, timeoutMs: 100 }
      - address: 10.0.0.2
        check: { tcp: "[fd00::9]:81" }
`);
    assert.deepEqual(f.services[0]!.instances.map((i) => i.check), [
      { kind: 'http', url: 'http://10.0.0.1:8080/health', intervalMs: 500, timeoutMs: 100 },
      { kind: 'tcp', host: 'fd00::9', port: 81, intervalMs: 10_000, timeoutMs: 2_000 },
    ]);
  });

  it('the same name in two scopes is two services; `services: []` is an empty, valid file', () => {
    const f = parse('services:\n  - name: web\n  - name: web\n    scope: staging\n');
    assert.deepEqual(f.services.map((s) => `${s.scope}/${s.name}`), ['default/web', 'staging/web']);
    assert.deepEqual(parseServicesFile('services:\n  - name: x\n', F, 'dc1').services[0]!.scope, 'dc1');
    assert.deepEqual(parse('services: []\n').services, []);
  });

  it('parses JSON when the file name ends in .json (a UTF-8 BOM is tolerated)', () => {
    const f = parse('\uFEFF{"services":[{"name":"web","instances":[{"address":"10.0.0.1","port":80}]}]}', 'svc.json');
    assert.equal(f.services[0]!.instances[0]!.address, '10.0.0.1');
  });
});

describe('file backend: every rejection names file, path and rule', () => {
  const cases: { what: string; text: string; path: string; rule: string; line?: number; file?: string }[] = [
    {
      what: 'bad IPv4',
      text: 'services:\n  - name: a\n  - name: b\n    instances:\n      - address: 10.0.0.1\n      - address: 10.0.0.300\n',
      path: 'services[1].instances[1].address: "10.0.0.300"',
      rule: 'must be an IPv4 or IPv6 address',
      line: 6,
    },
    { what: 'hostname', text: one('address: db.example.com'), path: 'services[0].instances[0].address: "db.example.com"', rule: 'is a hostname', line: 4 },
    { what: 'IPv6 zone id', text: one('address: "fe80::1%eth0"'), path: 'services[0].instances[0].address', rule: 'must be an IPv4 or IPv6 address' },
    { what: 'address not a string', text: one('address: 167772161'), path: 'services[0].instances[0].address: 167772161', rule: 'must be an IPv4 or IPv6 address' },
    { what: 'missing address', text: one('port: 80'), path: 'services[0].instances[0].address', rule: 'is required' },
    {
      what: 'unknown key (typo)',
      text: one('address: 10.0.0.1\n        prot: 80'),
      path: 'services[0].instances[0].prot',
      rule: 'is not a known key',
      line: 5,
    },
    { what: 'unknown top-level key', text: 'services: []\nservice: []\n', path: 'service', rule: 'is not a known key', line: 2 },
    { what: 'port out of range', text: one('address: 10.0.0.1\n        port: 70000'), path: 'services[0].instances[0].port: 70000', rule: '1..65535', line: 5 },
    { what: 'port not a number', text: one('address: 10.0.0.1\n        port: http'), path: 'services[0].instances[0].port: "http"', rule: 'port number' },
    { what: 'port and ports', text: one('address: 10.0.0.1\n        port: 80\n        ports: { http: 80 }'), path: 'services[0].instances[0].ports', rule: 'cannot be combined' },
    { what: 'named port not a label', text: one('address: 10.0.0.1\n        ports: { "a b": 80 }'), path: 'services[0].instances[0].ports: "a b"', rule: 'single DNS label', line: 5 },
    { what: 'ports wrong type', text: one('address: 10.0.0.1\n        ports: 80'), path: 'services[0].instances[0].ports: 80', rule: 'mapping of port name to port number' },
    {
      what: 'bad entry in port list',
      text: one('address: 10.0.0.1\n        ports: [{ name: dns, port: 53, protocol: sctp }]'),
      path: 'services[0].instances[0].ports[0].protocol: "sctp"',
      rule: 'must be "tcp" or "udp"',
    },
    { what: 'port list entry without port', text: one('address: 10.0.0.1\n        ports: [{ name: dns }]'), path: 'services[0].instances[0].ports[0].port', rule: 'is required' },
    {
      what: 'duplicate port name',
      text: one('address: 10.0.0.1\n        ports: [{ name: a, port: 1 }, { name: a, port: 2 }]'),
      path: 'services[0].instances[0].ports[1].name',
      rule: 'duplicates ports[0]',
    },
    { what: 'weight 0', text: one('address: 10.0.0.1\n        weight: 0'), path: 'services[0].instances[0].weight: 0', rule: '1..65535' },
    { what: 'fractional weight', text: one('address: 10.0.0.1\n        weight: 1.5'), path: 'services[0].instances[0].weight: 1.5', rule: 'integer' },
    { what: 'YAML 1.1 boolean', text: one('address: 10.0.0.1\n        healthy: no'), path: 'services[0].instances[0].healthy: "no"', rule: 'true or false' },
    { what: 'tag not a label', text: 'services:\n  - name: a\n    tags: [ok, "not ok"]\n', path: 'services[0].tags[1]: "not ok"', rule: 'single DNS label', line: 3 },
    { what: 'service name not a label', text: 'services:\n  - name: my.web\n', path: 'services[0].name: "my.web"', rule: 'single DNS label', line: 2 },
    { what: 'missing service name', text: 'services:\n  - instances: []\n', path: 'services[0].name', rule: 'is required' },
    { what: 'negative TTL', text: 'services:\n  - name: a\n    ttlSeconds: -1\n', path: 'services[0].ttlSeconds: -1', rule: 'integer 0..' },
    {
      what: 'duplicate service in a scope',
      text: 'services:\n  - name: web\n  - name: api\n  - name: WEB\n',
      path: 'services[2].name: "web"',
      rule: 'duplicates services[0] in scope "default"',
      line: 4,
    },
    {
      what: 'duplicate instance',
      text: one('address: fd00::1\n        port: 80\n      - address: FD00:0::1\n        port: 80'),
      path: 'services[0].instances[1].address',
      rule: 'duplicates instances[0]',
    },
    { what: 'check without a probe', text: one('address: 10.0.0.1\n        check: { intervalMs: 1000 }'), path: 'services[0].instances[0].check', rule: 'exactly one of "tcp" or "http"' },
    { what: 'check with both probes', text: one('address: 10.0.0.1\n        check: { tcp: 80, http: "http://x/" }'), path: 'services[0].instances[0].check', rule: 'exactly one of' },
    { what: 'check with a bad URL', text: one('address: 10.0.0.1\n        check: { http: "ftp://x/" }'), path: 'services[0].instances[0].check.http: "ftp://x/"', rule: 'http:// or https:// URL' },
    { what: 'tcp check to a hostname', text: one('address: 10.0.0.1\n        check: { tcp: "db:5432" }'), path: 'services[0].instances[0].check.tcp: "db:5432"', rule: '"ip:port"' },
    { what: 'check interval too small', text: one('address: 10.0.0.1\n        check: { tcp: 1, intervalMs: 5 }'), path: 'services[0].instances[0].check.intervalMs: 5', rule: '100..86400000' },
    { what: 'services not a list', text: 'services: web\n', path: 'services: "web"', rule: 'must be a list of services', line: 1 },
    { what: 'no services key', text: 'web: {}\n', path: 'services', rule: 'is required' },
    { what: 'top level not a mapping', text: '- a\n- b\n', path: '(top level)', rule: 'must be a mapping' },
    { what: 'empty file', text: '# nothing\n', path: '', rule: 'is empty' },
    { what: 'YAML syntax', text: 'services:\n  - name: [a\n', path: '', rule: 'invalid YAML' },
    { what: 'YAML duplicate key', text: 'services:\n  - name: a\n    name: b\n', path: '', rule: 'Map keys must be unique at line 3' },
    { what: 'JSON syntax', text: '{\n "services": [\n }\n', path: '', rule: 'invalid JSON', file: 'svc.json' },
    {
      what: 'JSON validation (with a line)',
      text: '{\n  "services": [\n    {"name": "a", "instances": [{"address": "x.y"}]}\n  ]\n}\n',
      path: 'services[0].instances[0].address: "x.y"',
      rule: 'is a hostname',
      line: 3,
      file: 'svc.json',
    },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const err = rejects(c.text, c.file);
      assert.ok(err.message.includes(c.path), `message has path "${c.path}": ${err.message}`);
      assert.ok(err.message.includes(c.rule), `message has rule "${c.rule}": ${err.message}`);
      if (c.line !== undefined) {
        assert.ok(err.message.includes(`line ${c.line}: ${c.path}`), `message has line ${c.line}: ${err.message}`);
      }
    });
  }

  it('lists every problem, not just the first', () => {
    const err = rejects(one('address: 10.0.0.300\n        weight: 0\n        color: blue'));
    assert.deepEqual(
      (err.details.problems as string[]).map((p) => p.split(':')[1]?.trim()).sort(),
      ['services[0].instances[0].address', 'services[0].instances[0].color', 'services[0].instances[0].weight'].sort(),
    );
  });
});

describe('file backend: config entry schema', () => {
  it('defaults defaultScope, debounceMs, removalDebounceMs, maxFileBytes and parseHeapMb, rejects unknown keys', () => {
    assert.deepEqual(configSchema.parse({ type: 'file', path: 'services.yaml' }), {
      type: 'file',
      path: 'services.yaml',
      defaultScope: 'default',
      debounceMs: 100,
      removalDebounceMs: 5000,
      maxFileBytes: 16 * 1024 * 1024,
      parseHeapMb: 2048,
    });
    assert.equal(configSchema.safeParse({ type: 'file', path: 'x', removalDebounceMs: -1 }).success, false);
    assert.equal(configSchema.safeParse({ type: 'file', path: 'x', maxFileBytes: 0 }).success, false);
    assert.equal(configSchema.safeParse({ type: 'file', path: 'x', parseHeapMb: 1 }).success, false);
    assert.equal(configSchema.safeParse({ type: 'file', path: 'x', watch: true }).success, false);
    assert.equal(configSchema.safeParse({ type: 'file', path: 'x', defaultScope: 'a.b' }).success, false);
    assert.equal(configSchema.safeParse({ type: 'file' }).success, false);
  });
});

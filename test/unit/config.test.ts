// Unit: config validation errors name the file, the key path, the bad value and the rule (architecture rule 5).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkConfig, checkServicesText } from '../../src/config/check.ts';
import { closestKey, ConfigError, editDistance, parseConfigLocated, parseConfigText } from '../../src/config/load.ts';

const ok = 'backends:\n  - type: file\n    path: services.yaml\n';

function fails(text: string): ConfigError {
  try {
    parseConfigText(text, 'conf/svcdns.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.code, 'SVCDNS_CONFIG_INVALID');
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('config', () => {
  it('defaults', () => {
    const c = parseConfigText(ok, 'x.yaml');
    assert.deepEqual(c.listen, [{ host: '127.0.0.1', port: 8653 }]);
    assert.deepEqual(c.domains, ['sd.internal']);
    assert.equal(c.ttlSeconds, 5);
    assert.equal(c.negativeTtlSeconds, 5);
    assert.equal(c.maxUdpPayloadBytes, 1232);
    assert.equal(c.order, 'random');
    assert.equal(c.maxAnswers, 0);
    assert.equal(c.emptyService, 'nodata');
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.backends));
  });

  it('accepts IPv6 and several listen addresses; domains are lowercased without the dot', () => {
    const c = parseConfigText(`listen: ["[::1]:53", "127.0.0.1:5353"]\ndomains: [SD.Internal., consul]\n${ok}`, 'x.yaml');
    assert.deepEqual(c.listen, [{ host: '::1', port: 53 }, { host: '127.0.0.1', port: 5353 }]);
    assert.deepEqual(c.domains, ['sd.internal', 'consul']);
  });

  it('unknown key: file, line, path, and a hint for a renamed key', () => {
    const e = fails(`ttl: 30\n${ok}`);
    assert.match(e.message, /^conf\/svcdns\.yaml:1: ttl: unknown key \(did you mean "ttlSeconds"\?\)/);
    assert.equal(e.issues[0]!.path, 'ttl');
  });

  it('bad values: path, value and rule', () => {
    const e = fails(`ttlSeconds: -1\nlisten: "localhost:53"\norder: shuffle\n${ok}`);
    const byPath = Object.fromEntries(e.issues.map((i) => [i.path, i]));
    assert.match(byPath.ttlSeconds!.message, /^-1: .*>=\s*0/);
    assert.match(byPath.listen!.message, /"localhost:53".*must be an IP address/);
    assert.match(byPath.order!.message, /"shuffle".*random.*round-robin.*fixed/);
    assert.equal(byPath.order!.line, 3);
  });

  it('backends: required, type checked, backend keys strict, duplicate names rejected', () => {
    assert.match(fails('listen: "127.0.0.1:53"\n').message, /backends/);
    assert.match(fails('backends:\n  - type: etcd\n').message, /backends\[0\]\.type/);
    assert.match(fails('backends:\n  - type: file\n    path: a.yaml\n    bogus: 1\n').message, /backends\[0\]\.bogus: unknown key/);
    assert.match(
      fails('backends:\n  - type: file\n    path: a.yaml\n  - type: file\n    path: b.yaml\n').message,
      /backends\[1\]\.name: .*duplicate backend name "file"/,
    );
  });

  it('not YAML, or not a mapping', () => {
    assert.match(fails('listen: [\n').message, /conf\/svcdns\.yaml:\d+: not valid YAML/);
    assert.match(fails('- 1\n- 2\n').message, /must be a mapping/);
  });

  it('overrides from flags/env apply before validation', () => {
    const c = parseConfigText(ok, 'x.yaml', { listen: ['127.0.0.1:9999'], logLevel: 'debug' });
    assert.deepEqual(c.listen, [{ host: '127.0.0.1', port: 9999 }]);
    assert.equal(c.log.level, 'debug');
  });
});

// ---- check-config: every check startup makes (issue 10 #12) ----

describe('check-config runs every check startup runs (issue 10 #12)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'svcdns-check-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const file = join(tmp, 'svcdns.yaml');
  const located = (text: string) => parseConfigLocated(text, file);
  const run = async (text: string, full: boolean, env: Record<string, string> = {}) => {
    const { config, lineOf } = located(text);
    return checkConfig(config, { file, lineOf, env, full });
  };

  it('the schema rejects a Consul address that cannot parse and a Kubernetes namespace that cannot exist', () => {
    const consul = fails('backends:\n  - type: consul\n    address: "http://127.0.0.1:notaport"\n');
    assert.match(consul.message, /svcdns\.yaml:3: backends\[0\]\.address: "http:\/\/127\.0\.0\.1:notaport": must be host:port/);
    const k8s = fails('backends:\n  - type: kubernetes\n    namespaces: [prod, Default_NS]\n');
    assert.match(k8s.message, /backends\[0\]\.namespaces\[1\]: "Default_NS": must be a Kubernetes namespace name/);
    const tls = fails('backends:\n  - type: consul\n    address: "http://c:8500"\n    tls: { caFile: ca.pem }\n');
    assert.match(tls.message, /backends\[0\]\.tls: .*address is http/);
  });

  it('a missing services file: SVCDNS_BACKEND_CONFIG at backends[0].path, not permanent (startup keeps watching for it)', async () => {
    const text = 'backends:\n  - type: file\n    path: nope.yaml\n';
    const [p, ...rest] = await run(text, true);
    assert.equal(rest.length, 0);
    assert.equal(p!.code, 'SVCDNS_BACKEND_CONFIG');
    assert.equal(p!.permanent, false);
    assert.match(p!.message, /svcdns\.yaml:3: backends\[0\]\.path: "nope\.yaml": cannot read .*nope\.yaml \(ENOENT\)/);
    assert.deepEqual(await run(text, false), [], 'startup reads no file for its permanent checks');
  });

  it('an invalid services file: one SVCDNS_BACKEND_BAD_DATA per problem, each at its own file:line', async () => {
    writeFileSync(join(tmp, 'bad.yaml'), 'services:\n  - name: web\n    instances:\n      - { address: 10.0.0.300 }\n      - { address: 10.0.0.1, port: 0 }\n');
    const problems = await run('backends:\n  - type: file\n    path: bad.yaml\n', true);
    assert.deepEqual(problems.map((p) => p.code), ['SVCDNS_BACKEND_BAD_DATA', 'SVCDNS_BACKEND_BAD_DATA']);
    assert.match(problems[0]!.message, /bad\.yaml:4: services\[0\]\.instances\[0\]\.address: "10\.0\.0\.300" must be an IPv4 or IPv6 address$/);
    assert.match(problems[1]!.message, /bad\.yaml:5: services\[0\]\.instances\[1\]\.port: 0 must be a port number/);
    writeFileSync(join(tmp, 'good.yaml'), 'services:\n  - name: web\n    instances:\n      - { address: 10.0.0.1 }\n');
    assert.deepEqual(await run('backends:\n  - type: file\n    path: good.yaml\n', true), []);
  });

  it('a services file on its own (check-config --services)', () => {
    assert.deepEqual(checkServicesText('services:\n  - name: web\n', 's.yaml'), []);
    const [p] = checkServicesText('services:\n  - name: web\n    bogus: 1\n', 's.yaml');
    assert.equal(p!.code, 'SVCDNS_BACKEND_BAD_DATA');
    assert.match(p!.message, /^s\.yaml:3: services\[0\]\.bogus: /);
  });

  it('Consul: an address from $CONSUL_HTTP_ADDR that cannot parse is permanent; an unreadable tokenFile is not', async () => {
    const [addr] = await run('backends:\n  - type: consul\n', false, { CONSUL_HTTP_ADDR: 'http://127.0.0.1:notaport' });
    assert.equal(addr!.code, 'SVCDNS_BACKEND_CONFIG');
    assert.equal(addr!.permanent, true);
    assert.match(addr!.message, /svcdns\.yaml:2: backends\[0\]: .*notaport.*\$CONSUL_HTTP_ADDR/);
    const [token] = await run('backends:\n  - type: consul\n    tokenFile: nope.token\n', true);
    assert.equal(token!.code, 'SVCDNS_BACKEND_CONFIG');
    assert.equal(token!.permanent, false);
    assert.match(token!.message, /svcdns\.yaml:3: backends\[0\]\.tokenFile: "nope\.token": cannot read Consul token file/);
    assert.deepEqual(await run('backends:\n  - type: consul\n    tokenFile: nope.token\n', false), []);
  });

  it('Kubernetes: no API source at all is permanent; an unreadable kubeconfig is not', async () => {
    const [none] = await run('backends:\n  - type: kubernetes\n', false, {});
    assert.equal(none!.code, 'SVCDNS_BACKEND_CONFIG');
    assert.equal(none!.permanent, true);
    assert.match(none!.message, /no Kubernetes API configuration/);
    const [kc] = await run('backends:\n  - type: kubernetes\n    kubeconfig: nope.kubeconfig\n', true);
    assert.equal(kc!.code, 'SVCDNS_BACKEND_CONFIG');
    assert.equal(kc!.permanent, false);
    assert.match(kc!.message, /svcdns\.yaml:3: backends\[0\]\.kubeconfig: "nope\.kubeconfig": cannot read kubeconfig/);
  });
});

// Issue 13 ("Packaging and logs"): a report lists problems in the order of the file; hints come from the schema's
// own keys by edit distance (architecture rule 5), and a bad flag or variable is named as such, not as a file line.
describe('config reports (issue 13)', () => {
  const parse = (text: string, overrides = {}): ConfigError => {
    try {
      parseConfigText(text, 'conf/svcdns.yaml', overrides);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err;
    }
    assert.fail('expected a ConfigError');
  };

  it('problems are sorted by line, whatever the schema order', () => {
    // The schema checks listen before maxAnswers before backends; the file has them the other way round.
    const e = parse('backends:\n  - type: file\n    path: s.yaml\n    debounceMs: -1\nmaxAnswers: -1\nlisten: nope\n');
    assert.deepEqual(e.issues.map((i) => i.line), [4, 5, 6]);
    assert.deepEqual(e.message.split('\n').map((l) => /^conf\/svcdns\.yaml:(\d+):/.exec(l)?.[1]), ['4', '5', '6']);
  });

  it('did-you-mean: the closest key the schema allows at that path, by edit distance (no fixed table)', () => {
    const e = parse(
      'maxAnswer: 3\nordr: fixed\ntcp:\n  maxConn: 5\n  idleTimeout: 100\nbackends:\n  - type: file\n    patth: s.yaml\n    debounce: 1\n  - type: consul\n    adress: http://127.0.0.1:8500\nzzzzzz: 1\n',
    );
    const hint = Object.fromEntries(e.issues.filter((i) => i.message.startsWith('unknown key')).map((i) => [i.path, /did you mean "([^"]+)"/.exec(i.message)?.[1] ?? null]));
    assert.deepEqual(hint, {
      maxAnswer: 'maxAnswers',
      ordr: 'order',
      'tcp.maxConn': 'maxConnections',
      'tcp.idleTimeout': 'idleTimeoutMs',
      'backends[0].patth': 'path',
      'backends[0].debounce': 'debounceMs',
      'backends[1].adress': 'address',
      zzzzzz: null,
    });
  });

  it('closestKey and editDistance', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('adress', 'address'), 1);
    assert.equal(editDistance('ordre', 'order'), 1, 'a transposition is one edit');
    assert.equal(closestKey('ttl', ['tcp', 'ttlSeconds']), 'ttlSeconds', 'the unit suffix is optional');
    assert.equal(closestKey('TTLSeconds', ['ttlSeconds']), 'ttlSeconds', 'case is ignored');
    assert.equal(closestKey('nothing', ['listen', 'domains']), undefined);
  });

  it('a bad --listen or SVCDNS_LISTEN is reported as the flag or variable, not as a line of the file', () => {
    const flag = parse(`listen: "127.0.0.1:53"\n${ok}`, { listen: ['127.0.0.1:1', 'nope'], sources: { listen: '--listen' } });
    assert.equal(flag.message, '--listen: nope: must be "host:port" or "[ipv6]:port"');
    assert.equal(flag.issues[0]!.line, undefined);
    const env = parse(ok, { listen: ['1.2.3.4:99999'], sources: { listen: 'SVCDNS_LISTEN' } });
    assert.equal(env.message, 'SVCDNS_LISTEN: 1.2.3.4:99999: port must be 0..65535');
    const level = parse(`ttlSeconds: -1\n${ok}`, { logLevel: 'loud', sources: { logLevel: 'SVCDNS_LOG_LEVEL' } });
    const lines = level.message.split('\n');
    assert.match(lines[0]!, /^SVCDNS_LOG_LEVEL: loud: .*"info"/, 'flags and variables first');
    assert.match(lines[1]!, /^conf\/svcdns\.yaml:1: ttlSeconds: -1: /);
    const admin = parse(ok, { adminListen: 'foo' });
    assert.match(admin.message, /^--admin-listen: foo: must be "host:port"/, 'default source names are the flags');
  });
});

describe('config key paths (issue 13)', () => {
  it('a key that is not a plain name is quoted in the path, so an empty key is never reported without one', () => {
    const e = fails(`"": 1\n"a b": 2\ntcp:\n  "7": 3\n${ok}`);
    assert.deepEqual(e.issues.map((i) => i.path), ['[""]', '["a b"]', 'tcp["7"]']);
    assert.match(e.message, /^conf\/svcdns\.yaml:1: \[""\]: unknown key$/m);
  });
});

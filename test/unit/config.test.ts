// Unit: config validation errors name the file, the key path, the bad value and the rule (architecture rule 5).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfigText } from '../../src/config/load.ts';

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

// e2e: the svcdns command as an operator runs it — exit codes and what a bad config tells them on stderr.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SAMPLE_CONFIG, collect, spawnSvcdns, tempDir } from './harness.ts';

async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnSvcdns(args);
  const io = collect(child);
  const kill = setTimeout(() => child.kill('SIGKILL'), 10_000); // a bad config must exit, not serve
  const code = await io.exited;
  clearTimeout(kill);
  return { code, stdout: io.stdout(), stderr: io.stderr() };
}

test('a bad config: exit 2 before listening; stderr names the file, line, key path, value and rule', { timeout: 15_000 }, async () => {
  const tmp = tempDir();
  try {
    const cfg = join(tmp.dir, 'bad.yaml');
    writeFileSync(cfg, 'listen: "127.0.0.1:0"\nmaxUdpPayloadBytes: 100\nttl: 5\nbackends:\n  - type: file\n    path: services.yaml\n    debounceMs: -3\n');
    const r = await runCli(['--config', cfg]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '', 'nothing logged: it never started');
    assert.match(r.stderr, new RegExp(`${cfg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: maxUdpPayloadBytes: 100: .*512`));
    assert.match(r.stderr, /bad\.yaml:7: backends\[0\]\.debounceMs: -3: .*0/);
    assert.match(r.stderr, /bad\.yaml:3: ttl: unknown key \(did you mean "ttlSeconds"\?\)/);

    const check = await runCli(['check-config', cfg]);
    assert.equal(check.code, 2);
    assert.match(check.stderr, /bad\.yaml:2: maxUdpPayloadBytes/);
  } finally {
    tmp.cleanup();
  }
});

test('a missing config file: exit 2 naming the file', { timeout: 15_000 }, async () => {
  const r = await runCli(['--config', '/nonexistent/svcdns.yaml']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\/nonexistent\/svcdns\.yaml/);
});

test('check-config on the sample prints OK and exits 0', { timeout: 15_000 }, async () => {
  const r = await runCli(['check-config', SAMPLE_CONFIG]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /svcdns\.yaml: OK \(1 backend\(s\): static\)/);
});

// e2e (static): deploy/systemd/svcdns.service agrees with the CLI it runs — non-root and sandboxed, reload is
// SIGHUP, stop is SIGTERM with a timeout above the CLI's drain bound, no restart loop on a bad config, and
// ExecStart uses only options the CLI knows. (systemd-analyze verify/security are run by hand: see
// docs/operations.md; this environment has no systemd as PID 1 to start the unit.)

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { EXIT_CONFIG, SHUTDOWN_GRACE_MS, main } from '../../src/cli.ts';
import { REPO } from './harness.ts';

/** Directives of one section: key → values in order (systemd allows repeats, e.g. SystemCallFilter). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let cur: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(\w+)\]$/.exec(line);
    if (sec) {
      cur = new Map();
      sections.set(sec[1]!, cur);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(cur && eq > 0, `directive inside a section: ${line}`);
    const k = line.slice(0, eq);
    cur.set(k, [...(cur.get(k) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

test('systemd unit: non-root, sandboxed, reload = SIGHUP, stop bound above the drain, ExecStart parses', async () => {
  const unit = parseUnit(readFileSync(join(REPO, 'deploy/systemd/svcdns.service'), 'utf8'));
  const svc = unit.get('Service');
  assert.ok(svc && unit.get('Unit') && unit.get('Install'));
  const one = (k: string) => svc.get(k)?.at(-1);

  // Non-root: a dynamic user (or a named non-root one), no capabilities, no privilege gain.
  assert.ok(one('DynamicUser') === 'yes' || (one('User') !== undefined && one('User') !== 'root'), 'runs as a non-root user');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('CapabilityBoundingSet'), '');
  assert.equal(one('AmbientCapabilities'), '');
  for (const [k, v] of [
    ['ProtectSystem', 'strict'],
    ['ProtectHome', 'yes'],
    ['PrivateTmp', 'yes'],
    ['PrivateDevices', 'yes'],
    ['RestrictSUIDSGID', 'yes'],
    ['SystemCallArchitectures', 'native'],
  ] as const) {
    assert.equal(one(k), v, `${k}=${v}`);
  }
  assert.ok(svc.get('SystemCallFilter')?.includes('@system-service'));
  assert.notEqual(one('MemoryDenyWriteExecute'), 'yes', 'V8 needs W+X pages for its JIT');

  // Lifecycle agrees with src/cli.ts.
  assert.match(one('ExecReload') ?? '', /kill -HUP \$MAINPID$/);
  assert.equal(one('KillSignal'), 'SIGTERM');
  const stopSec = Number(/^(\d+)s?$/.exec(one('TimeoutStopSec') ?? '')?.[1]);
  assert.ok(stopSec * 1000 > SHUTDOWN_GRACE_MS + 1000, `TimeoutStopSec=${stopSec}s exceeds the drain bound (${SHUTDOWN_GRACE_MS} ms + 1 s)`);
  assert.equal(Number(one('RestartPreventExitStatus')), EXIT_CONFIG, 'a bad config is not restarted in a loop');

  // ExecStart: node + dist/cli.js + options the CLI accepts (checked by running its parser with --help appended).
  const exec = (one('ExecStart') ?? '').split(/\s+/);
  assert.match(exec[0]!, /^\/.*\/node$/);
  // The Node flags every launcher passes (SERVER_NODE_FLAGS; test/e2e/launchers.test.ts), then the build.
  const flags = exec.slice(1).findIndex((a) => !a.startsWith('--')) + 1;
  assert.match(exec[flags]!, /\/dist\/cli\.js$/);
  const args = exec.slice(flags + 1);
  assert.deepEqual(args.slice(0, 2), ['--config', '/etc/svcdns/svcdns.yaml']);
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
  let code: number;
  try {
    code = await main([...args, '--help'], {});
  } finally {
    process.stdout.write = write;
  }
  assert.equal(code, 0, 'the CLI parses the unit\'s arguments');
  assert.match(out.join(''), /^Usage:/);
});

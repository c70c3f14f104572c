// e2e: every shipped launcher starts the server with the same Node flags (issue 11 item 4: the V8 young
// generation capped, ~100 MB of RSS at 10k services) and the same environment (two glibc malloc arenas). The
// flags are one list, SERVER_NODE_FLAGS, the environment SERVER_ENV; package.json's `start`, bin/svcdns.js's
// shebang, the Dockerfile and the systemd unit must all carry both, and a server started without them says so in
// its log (events node_flags_missing, node_env_missing), which is how the wiring is proven end to end.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { test } from 'node:test';
import { SERVER_ENV, SERVER_NODE_FLAGS, missingServerEnv, missingServerFlags } from '../../src/require-node.ts';
import { BIN, CLI_SOURCE, REPO, collect, copySampleConfig, pollUntil, tempDir } from './harness.ts';

const read = (p: string) => readFileSync(join(REPO, p), 'utf8');

test('launchers: package.json start, the bin shebang, the Dockerfile and the systemd unit pass SERVER_NODE_FLAGS', () => {
  assert.ok(SERVER_NODE_FLAGS.length > 0);
  const flags = SERVER_NODE_FLAGS.join(' ');
  const pkg = JSON.parse(read('package.json')) as { scripts: { start: string } };
  const env = Object.entries(SERVER_ENV);
  assert.ok(env.length > 0);
  assert.equal(pkg.scripts.start, `${env.map(([k, v]) => `${k}=\${${k}:-${v}}`).join(' ')} node ${flags} bin/svcdns.js --config config/svcdns.yaml`);
  assert.equal(read('bin/svcdns.js').split('\n')[0], `#!/usr/bin/env -S ${env.map(([k, v]) => `${k}=${v}`).join(' ')} node ${flags}`);
  const docker = read('Dockerfile');
  assert.match(docker, new RegExp(`^ENTRYPOINT \\["node", ${SERVER_NODE_FLAGS.map((f) => `"${f}"`).join(', ')}, "dist/cli\\.js"\\]$`, 'm'));
  const unit = read('deploy/systemd/svcdns.service');
  const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
  assert.match(exec, new RegExp(`^/\\S+/node ${flags} /\\S+/dist/cli\\.js `));
  for (const [k, v] of env) {
    assert.match(docker, new RegExp(`^ENV .*\\b${k}=${v}\\b`, 'm'), `Dockerfile sets ${k}`);
    assert.match(unit, new RegExp(`^Environment=${k}=${v}$`, 'm'), `the systemd unit sets ${k}`);
  }
});

test('launchers: missingServerEnv names what is unset or empty, and keeps any value an operator set', () => {
  assert.deepEqual(missingServerEnv({}), Object.keys(SERVER_ENV));
  assert.deepEqual(missingServerEnv({ ...SERVER_ENV }), []);
  assert.deepEqual(missingServerEnv(Object.fromEntries(Object.keys(SERVER_ENV).map((k) => [k, '8']))), []);
  assert.deepEqual(missingServerEnv(Object.fromEntries(Object.keys(SERVER_ENV).map((k) => [k, '']))), Object.keys(SERVER_ENV));
});

test('launchers: missingServerFlags reads execArgv and NODE_OPTIONS (either spelling of the flag name)', () => {
  assert.deepEqual(missingServerFlags([], undefined), [...SERVER_NODE_FLAGS]);
  assert.deepEqual(missingServerFlags([...SERVER_NODE_FLAGS], undefined), []);
  assert.deepEqual(missingServerFlags([], ` ${SERVER_NODE_FLAGS.join(' ')} --enable-source-maps`), []);
  assert.deepEqual(missingServerFlags(['--max_semi_space_size=8', '--optimize_for_size', '--no_allocation_site_pretenuring'], undefined), []);
  assert.deepEqual(missingServerFlags(['--max-semi-space-size=8'], undefined), ['--optimize-for-size', '--no-allocation-site-pretenuring']);
});

/** Start `args` with the test's Node first on PATH; resolve with the server's log records once it is listening. */
async function logsOf(file: string, args: readonly string[]): Promise<{ event?: string; missing?: string[] }[]> {
  // Without SERVER_ENV in the test's own environment: what a launcher sets is then what the server gets.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !(k in SERVER_ENV)));
  const t = tempDir('svcdns-launch-');
  const cfg = copySampleConfig(t.dir);
  const child = spawn(file, [...args, '--config', cfg, '--listen', '127.0.0.1:0', '--log-level', 'info'], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...base, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`, NODE_OPTIONS: '' },
  });
  const io = collect(child);
  try {
    const records = () => io.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { event?: string; missing?: string[] });
    await pollUntil('the server to log "listening"', async () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${io.stderr()}${io.stdout()}`);
      return records().some((r) => r.event === 'listening');
    });
    return records();
  } finally {
    child.kill('SIGTERM');
    await io.exited;
    t.cleanup();
  }
}

test('launchers: bin/svcdns.js run as a program (its shebang) starts with the flags and the environment; plain `node src/cli.ts` logs what is missing', { timeout: 120_000 }, async () => {
  const viaBin = await logsOf(BIN, []);
  assert.equal(viaBin.find((r) => r.event === 'node_flags_missing'), undefined, JSON.stringify(viaBin));
  if (process.platform === 'linux') assert.equal(viaBin.find((r) => r.event === 'node_env_missing'), undefined, JSON.stringify(viaBin));
  const plain = await logsOf(process.execPath, ['--disable-warning=ExperimentalWarning', CLI_SOURCE]);
  assert.deepEqual(plain.find((r) => r.event === 'node_flags_missing')?.missing, [...SERVER_NODE_FLAGS]);
  if (process.platform === 'linux') assert.deepEqual(plain.find((r) => r.event === 'node_env_missing')?.missing, Object.keys(SERVER_ENV));
});

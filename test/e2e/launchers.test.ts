// e2e: every shipped launcher starts the server with the same Node flags (issue 11 item 4: the V8 young
// generation capped, ~100 MB of RSS at 10k services). The flags are one list, SERVER_NODE_FLAGS; package.json's
// `start`, bin/svcdns.js's shebang, the Dockerfile and the systemd unit must all carry it, and a server started
// without it says so in its log (event node_flags_missing), which is how the wiring is proven end to end.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { test } from 'node:test';
import { SERVER_NODE_FLAGS, missingServerFlags } from '../../src/require-node.ts';
import { BIN, CLI_SOURCE, REPO, collect, copySampleConfig, pollUntil, tempDir } from './harness.ts';

const read = (p: string) => readFileSync(join(REPO, p), 'utf8');

test('launchers: package.json start, the bin shebang, the Dockerfile and the systemd unit pass SERVER_NODE_FLAGS', () => {
  assert.ok(SERVER_NODE_FLAGS.length > 0);
  const flags = SERVER_NODE_FLAGS.join(' ');
  const pkg = JSON.parse(read('package.json')) as { scripts: { start: string } };
  assert.equal(pkg.scripts.start, `node ${flags} bin/svcdns.js --config config/svcdns.yaml`);
  assert.equal(read('bin/svcdns.js').split('\n')[0], `#!/usr/bin/env -S node ${flags}`);
  assert.match(read('Dockerfile'), new RegExp(`^ENTRYPOINT \\["node", ${SERVER_NODE_FLAGS.map((f) => `"${f}"`).join(', ')}, "dist/cli\\.js"\\]$`, 'm'));
  const exec = /^ExecStart=(.*)$/m.exec(read('deploy/systemd/svcdns.service'))?.[1] ?? '';
  assert.match(exec, new RegExp(`^/\\S+/node ${flags} /\\S+/dist/cli\\.js `));
});

test('launchers: missingServerFlags reads execArgv and NODE_OPTIONS (either spelling of the flag name)', () => {
  assert.deepEqual(missingServerFlags([], undefined), [...SERVER_NODE_FLAGS]);
  assert.deepEqual(missingServerFlags([...SERVER_NODE_FLAGS], undefined), []);
  assert.deepEqual(missingServerFlags([], ` ${SERVER_NODE_FLAGS.join(' ')} --enable-source-maps`), []);
  assert.deepEqual(missingServerFlags(['--max_semi_space_size=8', '--optimize_for_size'], undefined), []);
  assert.deepEqual(missingServerFlags(['--max-semi-space-size=8'], undefined), ['--optimize-for-size']);
});

/** Start `args` with the test's Node first on PATH; resolve with the server's log records once it is listening. */
async function logsOf(file: string, args: readonly string[]): Promise<{ event?: string; missing?: string[] }[]> {
  const t = tempDir('svcdns-launch-');
  const cfg = copySampleConfig(t.dir);
  const child = spawn(file, [...args, '--config', cfg, '--listen', '127.0.0.1:0', '--log-level', 'info'], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`, NODE_OPTIONS: '' },
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

test('launchers: bin/svcdns.js run as a program (its shebang) starts with the flags; plain `node src/cli.ts` logs what is missing', { timeout: 120_000 }, async () => {
  const viaBin = await logsOf(BIN, []);
  assert.equal(viaBin.find((r) => r.event === 'node_flags_missing'), undefined, JSON.stringify(viaBin));
  const plain = await logsOf(process.execPath, ['--disable-warning=ExperimentalWarning', CLI_SOURCE]);
  assert.deepEqual(plain.find((r) => r.event === 'node_flags_missing')?.missing, [...SERVER_NODE_FLAGS]);
});

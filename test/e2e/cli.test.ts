// e2e: the svcdns command as an operator runs it — exit codes and what a bad config tells them on stderr.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { BIN, CLI_SOURCE, REPO, SAMPLE_CONFIG, collect, pollUntil, spawnSvcdns, tempDir, writeConfig } from './harness.ts';

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

// ---- the Node version check and the choice between src/ and dist/ (issue 10 #11, issue 9 item 4) ----

/** Bound on a child that should exit at once; only turns a hang into a failure (never a speed assertion). */
const EXIT_DEADLINE_MS = 60_000;

const WRONG_NODE = /^svcdns needs Node\.js >= 24 \(found (\d+\.\d+\.\d+)\); run npm ci, which installs it\n$/;

/** Run `file args` in `cwd`; resolves with the exit code and output; killed (and failed) only if it hangs. */
async function runWith(file: string, args: readonly string[], cwd = REPO, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(file, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const io = collect(child);
  const kill = setTimeout(() => child.kill('SIGKILL'), EXIT_DEADLINE_MS);
  try {
    const code = await io.exited;
    return { code, stdout: io.stdout(), stderr: io.stderr() };
  } finally {
    clearTimeout(kill);
  }
}

/**
 * A Node.js older than 24 to run the entry points with: the system's own `node` (Debian's is 20), found on PATH
 * outside this repository (npm puts node_modules/.bin, which holds Node 24, first). When the machine has none,
 * the test Node pretends to be 20.0.0 through a preload, so the message path is still exercised.
 */
function oldNode(): { file: string; pre: string[]; version: string } {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/bin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (dir === '' || resolve(dir).startsWith(REPO)) continue;
    const file = join(dir, 'node');
    if (!existsSync(file)) continue;
    const r = spawnSync(file, ['-p', 'process.versions.node'], { encoding: 'utf8', timeout: EXIT_DEADLINE_MS });
    const version = r.stdout?.trim() ?? '';
    if (r.status === 0 && Number(version.split('.')[0]) < 24) return { file, pre: [], version };
  }
  return { file: process.execPath, pre: ['--import', PRETEND_NODE_20], version: '20.0.0' };
}
const PRETEND_NODE_20 = `data:text/javascript,Object.defineProperty(process.versions,'node',{value:'20.0.0'})`;

test('wrong Node (issue 10 #11): bin/svcdns.js, `npm start` and a built dist/cli.js say which Node they need and exit 1', { timeout: 240_000 }, async () => {
  const node = oldNode();
  const out = join(REPO, '.tmp', `dist-node-check-${process.pid}`);
  try {
    const bin = await runWith(node.file, [...node.pre, BIN, '--config', SAMPLE_CONFIG]);
    assert.equal(bin.code, 1, bin.stderr);
    assert.match(bin.stderr, WRONG_NODE);
    assert.equal(WRONG_NODE.exec(bin.stderr)?.[1], node.version);
    assert.equal(bin.stdout, '');

    // `npm start` before `npm ci`: its command, with the old Node as `node`.
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: { start: string } };
    const words = pkg.scripts.start.split(/\s+/);
    while (/^[A-Z_]+=/.test(words[0] ?? '')) words.shift(); // its environment (SERVER_ENV) comes first
    const [cmd, ...startArgs] = words;
    assert.equal(cmd, 'node', 'npm start runs node');
    const start = await runWith(node.file, [...node.pre, ...startArgs]);
    assert.equal(start.code, 1, start.stderr);
    assert.match(start.stderr, WRONG_NODE);

    // The systemd unit's and the image's `node dist/cli.js`: built into a directory of its own (the repo's
    // dist/ belongs to whoever ran `npm run build`); inside the repo so that node_modules resolves.
    const tsc = await runWith(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', out]);
    assert.ok(existsSync(join(out, 'cli.js')), `tsc built nothing: ${tsc.stdout}${tsc.stderr}`);
    const dist = await runWith(node.file, [...node.pre, join(out, 'cli.js'), '--config', SAMPLE_CONFIG]);
    assert.equal(dist.code, 1, dist.stderr);
    assert.match(dist.stderr, WRONG_NODE);
    assert.equal(dist.stdout, '');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('wrong Node (issue 10 #11): src/cli.ts itself checks first (Node 22.18+ runs .ts files too)', { timeout: 120_000 }, async () => {
  const pretend = `data:text/javascript,Object.defineProperty(process.versions,'node',{value:'22.18.0'})`;
  const r = await runWith(process.execPath, ['--import', pretend, CLI_SOURCE, '--config', SAMPLE_CONFIG]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, WRONG_NODE);
  assert.equal(WRONG_NODE.exec(r.stderr)?.[1], '22.18.0');
});

/**
 * A copy of bin/svcdns.js beside a fake src/cli.ts and dist/cli.js whose main() prints which one ran: the launcher
 * picks by path relative to itself, so the copy behaves as the real one would in a checkout.
 */
function launcherLayout(dir: string): { run: () => Promise<string>; age: (rel: string, secondsAgo: number) => void } {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'src', 'sub'), { recursive: true });
  mkdirSync(join(dir, 'dist', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  copyFileSync(BIN, join(dir, 'bin', 'svcdns.js'));
  const fake = (which: string) => `export async function main() { process.stdout.write('${which}\\n'); return 0; }\n`;
  writeFileSync(join(dir, 'src', 'cli.ts'), fake('src'));
  writeFileSync(join(dir, 'src', 'sub', 'x.ts'), 'export {};\n');
  writeFileSync(join(dir, 'dist', 'cli.js'), fake('dist'));
  writeFileSync(join(dir, 'dist', 'sub', 'x.js'), 'export {};\n');
  const now = Date.now() / 1000;
  const age = (rel: string, secondsAgo: number) => utimesSync(join(dir, rel), now - secondsAgo, now - secondsAgo);
  // A checkout, then a build: every source 100 s old, every output 50 s old.
  for (const rel of ['src', 'src/sub', 'src/cli.ts', 'src/sub/x.ts']) age(rel, 100);
  for (const rel of ['dist/cli.js', 'dist/sub/x.js']) age(rel, 50);
  const run = async () => {
    const r = await runWith(process.execPath, [join(dir, 'bin', 'svcdns.js')], dir);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  return { run, age };
}

test('a stale dist/ is never run (issue 9 item 4): bin/svcdns.js runs dist/ only when no file under src/ is newer', { timeout: 120_000 }, async () => {
  const tmp = tempDir();
  try {
    const l = launcherLayout(tmp.dir);
    assert.equal(await l.run(), 'dist', 'a build newer than every source runs');
    l.age('src/sub/x.ts', 10); // a source edited after the build
    assert.equal(await l.run(), 'src');
    l.age('src/sub/x.ts', 100);
    l.age('dist/sub/x.js', 200); // an output left over from an older build
    assert.equal(await l.run(), 'src');
    l.age('dist/sub/x.js', 50);
    assert.equal(await l.run(), 'dist');
    rmSync(join(tmp.dir, 'src', 'sub', 'x.ts'));
    l.age('src/sub', 10); // a source deleted after the build: only its directory says so
    assert.equal(await l.run(), 'src');
    rmSync(join(tmp.dir, 'src'), { recursive: true }); // an installed copy without sources (systemd, Docker)
    assert.equal(await l.run(), 'dist');
    const l2 = launcherLayout(join(tmp.dir, 'again'));
    rmSync(join(tmp.dir, 'again', 'dist'), { recursive: true });
    assert.equal(await l2.run(), 'src', 'no build: the sources');
  } finally {
    tmp.cleanup();
  }
});

test('the e2e harness runs the sources under test, never a build (issue 9 item 4)', { timeout: 60_000 }, async () => {
  const child = spawnSvcdns(['--version']);
  const io = collect(child);
  try {
    assert.ok(child.spawnargs.includes(CLI_SOURCE), child.spawnargs.join(' '));
    assert.equal(await io.exited, 0, io.stderr());
  } finally {
    child.kill('SIGKILL');
  }
});

// ---- check-config runs every check startup runs; startup refuses a config that can never serve (issue 10 #12) ----

const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('check-config (issue 10 #12): a missing or invalid services file, a Consul address that is not one, a namespace that cannot exist: exit 2 with file:line', { timeout: 120_000 }, async () => {
  const tmp = tempDir();
  try {
    const cfg = (name: string, backend: string) => {
      const p = join(tmp.dir, name);
      writeFileSync(p, `listen: "127.0.0.1:0"\nadmin: { enabled: false }\nbackends:\n${backend}`);
      return p;
    };
    const missing = cfg('missing.yaml', '  - type: file\n    path: nope.yaml\n');
    let r = await runCli(['check-config', missing]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, new RegExp(`^${reEscape(missing)}:5: backends\\[0\\]\\.path: "nope\\.yaml": cannot read .*ENOENT`, 'm'));

    writeFileSync(join(tmp.dir, 'bad-services.yaml'), 'services:\n  - name: web\n    instances:\n      - { address: 10.0.0.300 }\n');
    const invalid = cfg('invalid.yaml', '  - type: file\n    path: bad-services.yaml\n');
    r = await runCli(['check-config', invalid]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /bad-services\.yaml:4: services\[0\]\.instances\[0\]\.address: "10\.0\.0\.300" must be an IPv4 or IPv6 address/);

    const consul = cfg('consul.yaml', '  - type: consul\n    address: "http://127.0.0.1:notaport"\n');
    r = await runCli(['check-config', consul]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, new RegExp(`^${reEscape(consul)}:5: backends\\[0\\]\\.address: "http://127\\.0\\.0\\.1:notaport": `, 'm'));

    const k8s = cfg('k8s.yaml', '  - type: kubernetes\n    namespaces: [Default_NS]\n');
    r = await runCli(['check-config', k8s]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, new RegExp(`^${reEscape(k8s)}:5: backends\\[0\\]\\.namespaces\\[0\\]: "Default_NS": must be a Kubernetes namespace name`, 'm'));
  } finally {
    tmp.cleanup();
  }
});

test('check-config --services FILE validates a services file on its own (issue 10 #12)', { timeout: 60_000 }, async () => {
  const tmp = tempDir();
  try {
    const good = await runCli(['check-config', '--services', join(REPO, 'config/services.yaml')]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /services\.yaml: OK/);
    const bad = join(tmp.dir, 's.yaml');
    writeFileSync(bad, 'services:\n  - name: web\n    instances:\n      - { address: 10.0.0.1, port: 0 }\n      - { address: db.internal }\n');
    const r = await runCli(['check-config', '--services', bad]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, new RegExp(`^${reEscape(bad)}:4: services\\[0\\]\\.instances\\[0\\]\\.port: 0 must be a port number`, 'm'));
    assert.match(r.stderr, new RegExp(`^${reEscape(bad)}:5: services\\[0\\]\\.instances\\[1\\]\\.address: "db\\.internal" is a hostname`, 'm'));
    const none = await runCli(['check-config', '--services', join(tmp.dir, 'absent.yaml')]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /absent\.yaml: cannot read the file \(ENOENT\)/);
  } finally {
    tmp.cleanup();
  }
});

test('startup (issue 10 #12): a permanent config error exits 2 with its message instead of serving SERVFAIL for ever', { timeout: 120_000 }, async () => {
  const tmp = tempDir();
  try {
    const cfg = join(tmp.dir, 'svcdns.yaml');
    writeFileSync(cfg, 'listen: "127.0.0.1:0"\nadmin: { enabled: false }\nbackends:\n  - type: consul\n');
    const env: NodeJS.ProcessEnv = { ...process.env, CONSUL_HTTP_ADDR: 'http://127.0.0.1:notaport' };
    delete env.SVCDNS_LISTEN;
    delete env.SVCDNS_LOG_LEVEL;
    const r = await runWith(process.execPath, [CLI_SOURCE, '--config', cfg], REPO, env);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal(r.stdout, '', 'it never started');
    assert.match(r.stderr, new RegExp(`^${reEscape(cfg)}:4: backends\\[0\\]: invalid Consul address "http://127\\.0\\.0\\.1:notaport" \\(from \\$CONSUL_HTTP_ADDR\\)`, 'm'));

    writeFileSync(cfg, 'listen: "127.0.0.1:0"\nadmin: { enabled: false }\nbackends:\n  - type: kubernetes\n    kubeconfig: kc.yaml\n    namespaces: [Default_NS]\n');
    const k = await runCli(['--config', cfg]);
    assert.equal(k.code, 2, k.stdout + k.stderr);
    assert.match(k.stderr, /svcdns\.yaml:6: backends\[0\]\.namespaces\[0\]: "Default_NS"/);
  } finally {
    tmp.cleanup();
  }
});

test('a bad --listen, SVCDNS_LISTEN or --log-level is reported as the flag or variable, not as a line of the file (issue 13)', { timeout: 120_000 }, async () => {
  const tmp = tempDir();
  try {
    // The file's own listen is fine and on line 1: a message pointing at "svcdns.yaml:1" would send the operator
    // to the wrong place.
    const cfg = join(tmp.dir, 'svcdns.yaml');
    writeFileSync(cfg, 'listen: "127.0.0.1:0"\nadmin: { enabled: false }\nbackends:\n  - type: file\n    path: services.yaml\n');
    const flag = await runCli(['--config', cfg, '--listen', '127.0.0.1:0', '--listen', 'nope']);
    assert.equal(flag.code, 2, flag.stdout + flag.stderr);
    assert.equal(flag.stdout, '', 'it never started');
    assert.match(flag.stderr, /^--listen: nope: must be "host:port" or "\[ipv6\]:port"$/m);
    assert.doesNotMatch(flag.stderr, /svcdns\.yaml:\d+: listen/);

    const level = await runCli(['--config', cfg, '--log-level', 'loud']);
    assert.equal(level.code, 2, level.stdout + level.stderr);
    assert.match(level.stderr, /^--log-level: loud: .*"info"/m);

    const env: NodeJS.ProcessEnv = { ...process.env, SVCDNS_LISTEN: '127.0.0.1:0, 10.0.0.1:99999', SVCDNS_LOG_LEVEL: 'chatty' };
    const r = await runWith(process.execPath, ['--disable-warning=ExperimentalWarning', CLI_SOURCE, '--config', cfg], REPO, env);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /^SVCDNS_LISTEN: 10\.0\.0\.1:99999: port must be 0\.\.65535$/m);
    assert.match(r.stderr, /^SVCDNS_LOG_LEVEL: chatty: /m);
    assert.doesNotMatch(r.stderr, /svcdns\.yaml:\d+/);

    // check-config applies the same overrides and reports them the same way.
    const check = await runWith(process.execPath, ['--disable-warning=ExperimentalWarning', CLI_SOURCE, 'check-config', cfg], REPO, env);
    assert.equal(check.code, 2, check.stdout + check.stderr);
    assert.match(check.stderr, /^SVCDNS_LISTEN: 10\.0\.0\.1:99999: /m);
  } finally {
    tmp.cleanup();
  }
});

test('a bad config file: its problems in line order, with did-you-mean hints from the schema (issue 13)', { timeout: 60_000 }, async () => {
  const tmp = tempDir();
  try {
    const cfg = join(tmp.dir, 'svcdns.yaml');
    // Schema order would be listen, maxAnswers, backends; the file has backends first.
    writeFileSync(cfg, 'backends:\n  - type: file\n    pth: services.yaml\nmaxAnswrs: 2\nlisten: nope\n');
    const r = await runCli(['check-config', cfg]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.deepEqual(lines.map((l) => /svcdns\.yaml:(\d+):/.exec(l)?.[1]), ['2', '3', '4', '5'], r.stderr);
    assert.match(r.stderr, /svcdns\.yaml:3: backends\[0\]\.pth: unknown key \(did you mean "path"\?\)/);
    assert.match(r.stderr, /svcdns\.yaml:4: maxAnswrs: unknown key \(did you mean "maxAnswers"\?\)/);
  } finally {
    tmp.cleanup();
  }
});

test('--pid-file: names the process while it runs, so `kill -HUP $(cat FILE)` signals svcdns and no other node; removed at exit (issue 13)', { timeout: 120_000 }, async () => {
  const tmp = tempDir();
  const pidFile = join(tmp.dir, 'svcdns.pid');
  const cfg = writeConfig(tmp.dir, 'services:\n  - name: web\n    instances:\n      - { address: 10.0.0.1, port: 80 }\n');
  const child = spawnSvcdns(['--config', cfg, '--listen', '127.0.0.1:0', '--pid-file', pidFile]);
  const io = collect(child);
  try {
    await pollUntil('the listening line', async () => io.stdout().includes('"event":"listening"'));
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.equal(pid, child.pid);
    writeConfig(tmp.dir, 'services:\n  - name: web\n    instances:\n      - { address: 10.0.0.1, port: 80 }\n', 'ttlSeconds: 7\n');
    process.kill(pid, 'SIGHUP');
    await pollUntil('the reload the SIGHUP asked for', async () => io.stdout().includes('"event":"config_reloaded"'));
    process.kill(pid, 'SIGTERM');
    assert.equal(await io.exited, 0, io.stderr());
    assert.equal(existsSync(pidFile), false, 'the pid file is removed at exit');

    const bad = await runCli(['--config', cfg, '--listen', '127.0.0.1:0', '--pid-file', join(tmp.dir, 'missing-dir', 'x.pid')]);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /^svcdns: --pid-file: .*x\.pid: cannot write \(ENOENT\)$/m);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await io.exited;
    tmp.cleanup();
  }
});

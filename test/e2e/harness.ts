// test/e2e/harness: real processes for end-to-end tests — svcdns as a child process (src/cli.ts), dnsmasq,
// and the dig/kdig command-line tools — plus a parser for their text output. A missing tool is a test FAILURE
// naming the Debian package to install (never a skip: a missing tool must not let a test pass silently).

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { HANG_DEADLINE_MS } from '../helpers/deadline.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(REPO, 'bin/svcdns.js');
/** The CLI's source: what the e2e tests run (see spawnSvcdns). */
export const CLI_SOURCE = join(REPO, 'src/cli.ts');
export const SAMPLE_CONFIG = join(REPO, 'config/svcdns.yaml');

/** The Debian package that provides each tool (what .ci/run installs). */
export const TOOL_PACKAGES = {
  dig: 'bind9-dnsutils',
  kdig: 'knot-dnsutils',
  dnsmasq: 'dnsmasq-base',
  dnsperf: 'dnsperf',
  haproxy: 'haproxy',
  named: 'bind9',
  unbound: 'unbound',
  promtool: 'prometheus',
  chromium: 'chromium',
} as const;
export type Tool = keyof typeof TOOL_PACKAGES;

/**
 * Absolute path of a tool, searched on PATH and in the sbin directories (dnsmasq lives in /usr/sbin, which is
 * not on a non-root user's PATH on Debian). Throws an Error naming the package when it is missing.
 */
export function requireTool(tool: Tool, env: NodeJS.ProcessEnv = process.env): string {
  const dirs = [...(env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean);
  for (const dir of dirs) {
    const p = join(dir, tool);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here; keep looking
    }
  }
  const pkg = TOOL_PACKAGES[tool];
  const ci = env.CI === 'true' || env.CI === '1';
  throw new Error(
    `${tool} not found: install the Debian package ${pkg} (sudo apt-get install -y ${pkg})` +
      (ci ? '; CI=true: .ci/run should have installed it — the CI image is broken' : '; .ci/run installs it'),
  );
}

/** Poll `fn` until it returns a truthy value or the deadline passes; rethrows the last error at the deadline. */
export async function pollUntil<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = HANG_DEADLINE_MS, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A port free on 127.0.0.1 for both UDP and TCP right now (bind port 0 over TCP, then check UDP on it). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1');
}

/** A temp directory removed by the returned cleanup. */
export function tempDir(prefix = 'svcdns-e2e-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a program (no shell) with a hard timeout (ms); never rejects on a non-zero exit. */
export function run(file: string, args: readonly string[], timeoutMs = HANG_DEADLINE_MS): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, cwd: REPO }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(err);
        if (err.killed) return reject(new Error(`${file} ${args.join(' ')}: timed out after ${timeoutMs} ms`));
      }
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

// ---- dig / kdig output ----

export interface DigReply {
  /** NOERROR, NXDOMAIN, REFUSED, BADVERS, ... */
  readonly status: string;
  /** Header flags, lowercase: qr, aa, tc, rd, ra. */
  readonly flags: readonly string[];
  /** Question lines as printed (case kept), e.g. `WeB.service.sd.internal. IN A`. */
  readonly question: readonly string[];
  /** Records, whitespace normalised to single spaces: `name ttl class type rdata`. */
  readonly answer: readonly string[];
  readonly authority: readonly string[];
  readonly additional: readonly string[];
  /** EDNS version of the reply's OPT, or null when it has none. */
  readonly ednsVersion: number | null;
  readonly ednsUdpSize: number | null;
  /** `UDP` or `TCP` (dig's SERVER line / kdig's From line). */
  readonly transport: string | null;
  readonly text: string;
}

const norm = (line: string) => line.trim().replace(/\s+/g, ' ');

/** Parse the default output of dig (BIND 9) or kdig (Knot); both name sections `;; X SECTION:`. */
export function parseDig(text: string): DigReply {
  const status = /status: ([A-Z0-9]+)/.exec(text)?.[1];
  if (!status) throw new Error(`no reply in dig output:\n${text}`);
  const flags = (/;; flags: ([^;]*);/i.exec(text)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map((f) => f.toLowerCase());
  const sections: Record<string, string[]> = { QUESTION: [], ANSWER: [], AUTHORITY: [], ADDITIONAL: [] };
  let cur: string[] | null = null;
  for (const raw of text.split('\n')) {
    const m = /^;; ([A-Z]+) SECTION:/.exec(raw);
    if (m) {
      cur = sections[m[1]!] ?? null;
      continue;
    }
    if (!cur) continue;
    if (raw.trim() === '') cur = null;
    else if (cur === sections.QUESTION) cur.push(norm(raw.replace(/^;+\s*/, '')));
    else if (!raw.startsWith(';')) cur.push(norm(raw));
    else cur = null;
  }
  // dig: "; EDNS: version: 0, flags:; udp: 1232"; kdig: ";; Version: 0; flags: ; UDP size: 1232 B"
  const ver = /EDNS: version: (\d+)/.exec(text)?.[1] ?? /;; Version: (\d+);/.exec(text)?.[1];
  const udp = /; udp: (\d+)/.exec(text)?.[1] ?? /UDP size: (\d+) B/.exec(text)?.[1];
  const transport = /;; SERVER: .*\((UDP|TCP)\)/.exec(text)?.[1] ?? /;; From .*\((UDP|TCP)\)/.exec(text)?.[1] ?? null;
  return {
    status,
    flags,
    question: sections.QUESTION!,
    answer: sections.ANSWER!,
    authority: sections.AUTHORITY!,
    additional: sections.ADDITIONAL!,
    ednsVersion: ver === undefined ? null : Number(ver),
    ednsUdpSize: udp === undefined ? null : Number(udp),
    transport,
    text,
  };
}

/** Split a normalised record line into its fields. */
export function rr(line: string): { name: string; ttl: number; cls: string; type: string; data: string } {
  const [name, ttl, cls, type, ...rest] = line.split(' ');
  return { name: name!, ttl: Number(ttl), cls: cls!, type: type!, data: rest.join(' ') };
}

/**
 * `dig @127.0.0.1 -p PORT ...args`; parsed. Retries like a real client (4 tries of 5 s): on a loaded machine a
 * reply can be late, and a lost or late datagram must not fail a test about the answer's content.
 */
export async function dig(port: number, args: readonly string[]): Promise<DigReply> {
  const bin = requireTool('dig');
  const r = await run(bin, ['@127.0.0.1', '-p', String(port), '+time=5', '+tries=4', ...args]);
  if (r.code !== 0) throw new Error(`dig ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
  return parseDig(r.stdout);
}

/** `kdig @127.0.0.1 -p PORT ...args`, retrying like dig above; parsed. */
export async function kdig(port: number, args: readonly string[]): Promise<DigReply> {
  const bin = requireTool('kdig');
  const r = await run(bin, ['@127.0.0.1', '-p', String(port), '+time=5', '+retry=3', ...args]);
  if (r.code !== 0) throw new Error(`kdig ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
  return parseDig(r.stdout);
}

// ---- svcdns as a child process ----

export interface SvcdnsProcess {
  readonly port: number;
  readonly child: ChildProcess;
  /** Everything the process wrote so far. */
  output(): { stdout: string; stderr: string };
  /** SIGTERM, then SIGKILL after 3 s; resolves with the exit code. Safe to call twice. */
  stop(): Promise<number | null>;
}

/**
 * Spawn svcdns from its TypeScript sources (src/cli.ts), with the same Node (>= 24) that runs the tests: never a
 * dist/ build, which may be older than the code under test (issue 9). bin/svcdns.js has its own tests in cli.test.ts.
 */
export function spawnSvcdns(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLI_SOURCE, ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv(),
  });
}

/** The test's environment without svcdns's own variables (they would override the files under test). */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.SVCDNS_LISTEN;
  delete env.SVCDNS_LOG_LEVEL;
  return env;
}

/** Collect a child's output and its exit. */
export function collect(child: ChildProcess): { stdout: () => string; stderr: () => string; exited: Promise<number | null> } {
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  // 'close', not 'exit': it fires after the child's stdout/stderr are drained, so callers see all its output.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { stdout: () => out, stderr: () => err, exited };
}

function stopper(child: ChildProcess, exited: Promise<number | null>): () => Promise<number | null> {
  return () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      void exited.then(() => clearTimeout(t));
    }
    return exited;
  };
}

/**
 * Start svcdns on 127.0.0.1 port 0 with `configPath`, read the bound port from its `listening` log line, then
 * poll with dig until `readyName` answers NOERROR (the backend has synced: before that it is SERVFAIL, §5.4).
 */
export async function startSvcdns(configPath: string, readyName = 'web.service.sd.internal'): Promise<SvcdnsProcess> {
  requireTool('dig');
  const child = spawnSvcdns(['--config', configPath, '--listen', '127.0.0.1:0', '--log-level', 'info']);
  const io = collect(child);
  const proc: SvcdnsProcess = {
    port: 0,
    child,
    output: () => ({ stdout: io.stdout(), stderr: io.stderr() }),
    stop: stopper(child, io.exited),
  };
  try {
    const port = await pollUntil('svcdns to log its listening address', async () => {
      if (child.exitCode !== null) throw new Error(`svcdns exited ${child.exitCode}: ${io.stderr()}${io.stdout()}`);
      for (const line of io.stdout().split('\n')) {
        if (!line.startsWith('{')) continue;
        const rec = JSON.parse(line) as { event?: string; dns?: string[] };
        const m = rec.event === 'listening' ? /^127\.0\.0\.1:(\d+)$/.exec(rec.dns?.[0] ?? '') : null;
        if (m) return Number(m[1]);
      }
      return null;
    });
    (proc as { port: number }).port = port;
    await pollUntil(`svcdns to answer ${readyName}`, async () => (await dig(port, ['+norec', readyName])).status === 'NOERROR');
    return proc;
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** The admin HTTP listener on a kernel-chosen port, so parallel test processes (and `npm start`) never collide on 8654. */
const ADMIN_ANY_PORT = { listen: '127.0.0.1:0' };

/** Write an svcdns config (core keys + one file backend) and its services file into `dir`; returns the config path. */
export function writeConfig(dir: string, servicesYaml: string, extra = ''): string {
  writeFileSync(join(dir, 'services.yaml'), servicesYaml);
  const cfg = join(dir, 'svcdns.yaml');
  writeFileSync(
    cfg,
    `${extra}admin: ${JSON.stringify(ADMIN_ANY_PORT)}\nbackends:\n  - type: file\n    name: static\n    path: services.yaml\n    debounceMs: 0\n`,
  );
  return cfg;
}

/**
 * The sample config (config/svcdns.yaml) as is, except: the admin listener moves to port 0 and relative file
 * backend paths become absolute (so the copy in `dir` serves the sample's own services file). Returns its path.
 */
export function copySampleConfig(dir: string): string {
  const doc = parseDocument(readFileSync(SAMPLE_CONFIG, 'utf8'));
  const cfg = doc.toJS() as { admin?: Record<string, unknown>; backends?: { type?: string; path?: string }[] };
  doc.set('admin', { ...(cfg.admin ?? {}), ...ADMIN_ANY_PORT });
  (cfg.backends ?? []).forEach((b, i) => {
    if (b.type === 'file' && typeof b.path === 'string') doc.setIn(['backends', i, 'path'], resolve(dirname(SAMPLE_CONFIG), b.path));
  });
  const out = join(dir, 'svcdns.yaml');
  writeFileSync(out, doc.toString());
  return out;
}

// ---- dnsmasq ----

export interface DnsmasqProcess {
  readonly port: number;
  output(): string;
  stop(): Promise<number | null>;
}

/**
 * Run dnsmasq in the foreground with `confFile` on a free 127.0.0.1 port (no resolv.conf, no hosts file, no pid
 * file; `extraArgs` appended), and poll until it answers `readyName` with NOERROR.
 */
export async function startDnsmasq(confFile: string, extraArgs: readonly string[], readyName: string): Promise<DnsmasqProcess> {
  const bin = requireTool('dnsmasq');
  requireTool('dig');
  let lastErr: unknown = null;
  // A free port can be taken between our probe and dnsmasq's bind; try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(
      bin,
      [
        '--keep-in-foreground',
        `--conf-file=${confFile}`,
        `--port=${port}`,
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        '--no-resolv',
        '--no-hosts',
        '--no-poll',
        '--pid-file=',
        '--log-facility=-',
        ...extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const io = collect(child);
    const proc: DnsmasqProcess = { port, output: () => io.stdout() + io.stderr(), stop: stopper(child, io.exited) };
    try {
      await pollUntil(`dnsmasq to answer ${readyName}`, async () => {
        if (child.exitCode !== null) throw new Error(`dnsmasq exited ${child.exitCode}: ${proc.output()}`);
        return (await dig(port, [readyName])).status === 'NOERROR';
      }, 6000);
      return proc;
    } catch (err) {
      lastErr = err;
      await proc.stop();
      if (!/in use/i.test(proc.output())) break;
    }
  }
  throw lastErr;
}

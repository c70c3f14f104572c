// e2e: signals sent to a real svcdns child process. SIGTERM while a TCP query is half-sent: the listeners stop
// accepting, the query is still answered, the process exits 0 (drained by itself:
// a drain past its bound is forced, with exit code 1). SIGHUP with a good config adds a
// backend while the old one keeps answering every query; SIGHUP with a bad config is rejected and the running
// config stays; `watchConfig: true` reloads on a file change. State is read from /metrics and DNS, not log text.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { answerData, buildQuery, decode, query, rcode } from '../helpers/dns-client.ts';
import { HANG_DEADLINE_MS } from '../helpers/deadline.ts';
import { collect, pollUntil as pollWithin, spawnSvcdns, tempDir } from './harness.ts';

/** Wait for an event; the deadline only turns a hang into a failure. */
const pollUntil = <T>(what: string, fn: () => Promise<T | null | undefined | false>) => pollWithin(what, fn, HANG_DEADLINE_MS);

const svc = (name: string, addr: string) => `services:\n  - name: ${name}\n    instances:\n      - { address: ${addr}, port: 80 }\n`;

interface Running {
  readonly dnsPort: number;
  readonly adminPort: number;
  readonly exited: Promise<number | null>;
  readonly child: ReturnType<typeof spawnSvcdns>;
  output(): string;
  kill(): void;
}

/** Start svcdns with `cfg`; wait for its `listening` line (DNS and admin ports) and for `readyName` to answer. */
async function start(cfg: string, readyName: string): Promise<Running> {
  const child = spawnSvcdns(['--config', cfg, '--log-level', 'info']);
  const io = collect(child);
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  try {
    const ports = await pollUntil('svcdns to log its listening addresses', async () => {
      if (child.exitCode !== null) throw new Error(`svcdns exited ${child.exitCode}: ${io.stderr()}${io.stdout()}`);
      for (const line of io.stdout().split('\n')) {
        if (!line.startsWith('{')) continue;
        const rec = JSON.parse(line) as { event?: string; dns?: string[]; admin?: { port: number } | null };
        if (rec.event === 'listening' && rec.admin) return { dns: Number(/:(\d+)$/.exec(rec.dns![0]!)![1]), admin: rec.admin.port };
      }
      return null;
    });
    const r: Running = { dnsPort: ports.dns, adminPort: ports.admin, exited: io.exited, child, output: () => io.stdout() + io.stderr(), kill };
    await pollUntil(`${readyName} to answer`, async () => rcode(await query(r.dnsPort, readyName, 'A')) === 'NOERROR');
    return r;
  } catch (err) {
    kill();
    throw err;
  }
}

async function metricsText(r: Running): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${r.adminPort}/metrics`);
  return res.text();
}

function metric(text: string, re: RegExp): number {
  const m = re.exec(text);
  return m ? Number(m[1]) : NaN;
}

function writeConfig(dir: string, body: string): string {
  const p = join(dir, 'svcdns.yaml');
  writeFileSync(p, `listen: "127.0.0.1:0"\nadmin: { listen: "127.0.0.1:0" }\n${body}`);
  return p;
}

const backendA = `  - { type: file, name: a, path: a.yaml, defaultScope: as, debounceMs: 0 }\n`;
const backendB = `  - { type: file, name: b, path: b.yaml, defaultScope: bs, debounceMs: 0 }\n`;

describe('lifecycle: signals to a real process', { timeout: 60_000 }, () => {
  test('SIGTERM during a TCP query: the listeners close, the query is answered, exit 0 (drained, not forced)', async () => {
    const tmp = tempDir();
    writeFileSync(join(tmp.dir, 'a.yaml'), svc('web', '10.0.0.1'));
    const r = await start(writeConfig(tmp.dir, `backends:\n${backendA}`), 'web.service.as.sd.internal');
    try {
      // Half a query on an open connection: the 2-byte length and the first 10 bytes.
      const msg = buildQuery('web.service.as.sd.internal', 'A', { id: 4242 });
      const framed = Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);
      const sock = net.connect(r.dnsPort, '127.0.0.1');
      await new Promise<void>((res, rej) => sock.once('connect', res).once('error', rej));
      let got = Buffer.alloc(0);
      sock.on('data', (d) => (got = Buffer.concat([got, d])));
      const closed = new Promise<void>((res) => sock.once('close', () => res()));
      sock.write(framed.subarray(0, 12));
      // Wait until the server holds the partial query (its gauge counts our connection).
      await pollUntil('the connection to be counted', async () => /svcdns_dns_tcp_connections 1\b/.test(await metricsText(r)));

      r.child.kill('SIGTERM');
      // Stopped accepting: a new TCP connection is refused (the listening socket is closed).
      await pollUntil('the DNS listener to refuse connections', () =>
        new Promise<boolean>((res) => {
          const c = net.connect(r.dnsPort, '127.0.0.1');
          c.once('connect', () => {
            c.destroy();
            res(false);
          });
          c.once('error', (e: NodeJS.ErrnoException) => res(e.code === 'ECONNREFUSED'));
        }),
      );
      assert.equal(r.child.exitCode, null, 'still draining our half-sent query');
      // While draining, the admin server still answers, and /healthz says the process is going away.
      const health = await fetch(`http://127.0.0.1:${r.adminPort}/healthz`);
      assert.equal(health.status, 503);
      assert.equal(((await health.json()) as { status: string }).status, 'unavailable');
      sock.end(framed.subarray(12));
      await closed;
      assert.ok(got.length > 2, 'an answer came back');
      const reply = decode(got.subarray(2, 2 + got.readUInt16BE(0)));
      assert.equal(reply.id, 4242);
      assert.equal(rcode(reply), 'NOERROR');
      assert.deepEqual(answerData(reply, 'A'), ['10.0.0.1']);
      // 0, not 1: it drained by itself; past its bound (grace + 1 s) the CLI forces the exit with code 1.
      assert.equal(await r.exited, 0);
    } finally {
      r.kill();
      tmp.cleanup();
    }
  });

  test('SIGHUP with a good config adds a backend; the unchanged one answers every query through it', async () => {
    const tmp = tempDir();
    writeFileSync(join(tmp.dir, 'a.yaml'), svc('web', '10.0.0.1'));
    writeFileSync(join(tmp.dir, 'b.yaml'), svc('web', '10.0.0.2'));
    const cfg = writeConfig(tmp.dir, `backends:\n${backendA}`);
    const r = await start(cfg, 'web.service.as.sd.internal');
    let done = false;
    let hammer: Promise<void> | null = null;
    try {
      assert.equal(rcode(await query(r.dnsPort, 'web.service.bs.sd.internal', 'A')), 'NXDOMAIN');
      const results: string[] = [];
      hammer = (async () => {
        for (let i = 0; !done || i < 20; i++) {
          const q = await query(r.dnsPort, 'web.service.as.sd.internal', 'A', { tcp: i % 2 === 1, timeoutMs: 1000 });
          results.push(`${rcode(q)} ${answerData(q, 'A').join()}`);
        }
      })();
      writeConfig(tmp.dir, `ttlSeconds: 7\nbackends:\n${backendA}${backendB}`);
      r.child.kill('SIGHUP');
      await pollUntil('backend b to answer', async () => answerData(await query(r.dnsPort, 'web.service.bs.sd.internal', 'A'), 'A').join() === '10.0.0.2');
      done = true;
      await hammer;
      assert.deepEqual([...new Set(results)], ['NOERROR 10.0.0.1'], `every one of ${results.length} queries answered`);
      assert.equal((await query(r.dnsPort, 'web.service.as.sd.internal', 'A')).answers![0]!.ttl, 7, 'answer options applied');
      const m = await metricsText(r);
      assert.equal(metric(m, /svcdns_config_reloads_total\{result="success"\} (\d+)/), 1);
      assert.equal(metric(m, /svcdns_backend_state\{backend="b",type="file",state="synced"\} (\d+)/), 1);
      assert.equal(r.child.exitCode, null);
    } finally {
      done = true; // also when an assertion failed: the loop must not outlive the test
      await hammer?.catch(() => {});
      r.kill();
      tmp.cleanup();
    }
  });

  test('SIGHUP with a bad config is rejected; the running config keeps serving; SIGINT then exits 0', async () => {
    const tmp = tempDir();
    writeFileSync(join(tmp.dir, 'a.yaml'), svc('web', '10.0.0.1'));
    const cfg = writeConfig(tmp.dir, `backends:\n${backendA}`);
    const r = await start(cfg, 'web.service.as.sd.internal');
    try {
      // An unknown key, and a backend that would replace a: neither may take effect.
      writeFileSync(cfg, `listen: "127.0.0.1:0"\nadmin: { listen: "127.0.0.1:0" }\nttl: 9\nbackends:\n${backendB}`);
      r.child.kill('SIGHUP');
      await pollUntil('the reload to be counted as failed', async () => metric(await metricsText(r), /svcdns_config_reloads_total\{result="failure"\} (\d+)/) === 1);
      assert.equal(metric(await metricsText(r), /svcdns_config_reloads_total\{result="success"\} (\d+)/), 0);
      const q = await query(r.dnsPort, 'web.service.as.sd.internal', 'A');
      assert.deepEqual(answerData(q, 'A'), ['10.0.0.1']);
      assert.equal(q.answers![0]!.ttl, 5);
      assert.equal(r.child.exitCode, null, 'still running');
      r.child.kill('SIGINT');
      assert.equal(await r.exited, 0);
    } finally {
      r.kill();
      tmp.cleanup();
    }
  });

  test('watchConfig: true reloads when the config file changes', async () => {
    const tmp = tempDir();
    writeFileSync(join(tmp.dir, 'a.yaml'), svc('web', '10.0.0.1'));
    writeFileSync(join(tmp.dir, 'b.yaml'), svc('web', '10.0.0.2'));
    const cfg = writeConfig(tmp.dir, `watchConfig: true\nbackends:\n${backendA}`);
    const r = await start(cfg, 'web.service.as.sd.internal');
    try {
      writeConfig(tmp.dir, `watchConfig: true\nbackends:\n${backendA}${backendB}`);
      await pollUntil('backend b to answer after the file change', async () => rcode(await query(r.dnsPort, 'web.service.bs.sd.internal', 'A')) === 'NOERROR');
      assert.ok(metric(await metricsText(r), /svcdns_config_reloads_total\{result="success"\} (\d+)/) >= 1);
      r.child.kill('SIGTERM');
      assert.equal(await r.exited, 0);
    } finally {
      r.kill();
      tmp.cleanup();
    }
  });
});

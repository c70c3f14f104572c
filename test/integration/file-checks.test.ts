// Integration tests of static-file health checks (§6.1) against real TCP/HTTP servers on 127.0.0.1:0: an
// instance with a check is served only while its last probe passed; results re-emit snapshots; checks never
// hold back other changes after the first sync.

import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Backend } from '../../src/backends/backend.ts';
import { probe } from '../../src/backends/file/checks.ts';
import { configSchema, create } from '../../src/backends/file/index.ts';
import type { ServiceSnapshot } from '../../src/model/service.ts';
import { RecordingSink as Recorder } from '../helpers/recording-sink.ts';

/** `scope/name` → sorted `address:port` of the served instances. */
function view(snap: ServiceSnapshot): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, s] of snap.services) out[k] = s.instances.map((i) => `${i.address}:${i.ports[0]?.port ?? ''}`).sort();
  return out;
}




const cleanups: (() => Promise<void> | void)[] = [];
let dir: string;
let backend: Backend | null;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'svcdns-check-'));
  backend = null;
});
afterEach(async () => {
  await backend?.stop();
  while (cleanups.length) await cleanups.pop()!();
  await rm(dir, { recursive: true, force: true });
});

/** A TCP server on 127.0.0.1:0 that counts accepted connections. */
async function tcpServer(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  };
  cleanups.push(close);
  return { port, connections: () => n, close };
}

/** An HTTP server whose status is set by the test; `hang` makes it never answer. */
async function httpServer(): Promise<{ port: number; set: (s: number | 'hang') => void; requests: () => number }> {
  let status: number | 'hang' = 200;
  let n = 0;
  const srv = http.createServer((req, res) => {
    n++;
    if (status === 'hang') return;
    res.writeHead(status, status >= 300 && status < 400 ? { location: '/elsewhere' } : {});
    res.end(req.url);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  );
  return { port: (srv.address() as net.AddressInfo).port, set: (s) => (status = s), requests: () => n };
}

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Write the services file, then start the backend on it (default debounceMs). */
async function start(text: string): Promise<Recorder> {
  await writeFile(path.join(dir, 'services.yaml'), text);
  backend = create(configSchema.parse({ type: 'file', path: 'services.yaml' }), {
    logger: pino({ level: 'silent' }),
    configDir: dir,
    env: {},
  });
  const rec = new Recorder();
  backend.start(rec);
  return rec;
}

const FAST = 'intervalMs: 100, timeoutMs: 300';

describe('file backend: health checks (§6.1)', () => {
  it('probe(): TCP connect passes, a closed port fails, an HTTP 2xx/3xx passes, 5xx and a hang fail', async () => {
    const tcp = await tcpServer();
    const web = await httpServer();
    const dead = await closedPort();
    const base = { intervalMs: 1000, timeoutMs: 300 };
    assert.equal(await probe({ kind: 'tcp', host: '127.0.0.1', port: tcp.port, ...base }), null);
    assert.match((await probe({ kind: 'tcp', host: '127.0.0.1', port: dead, ...base }))!, /ECONNREFUSED/);
    const url = `http://127.0.0.1:${web.port}/health`;
    assert.equal(await probe({ kind: 'http', url, ...base }), null);
    web.set(302);
    assert.equal(await probe({ kind: 'http', url, ...base }), null);
    web.set(503);
    assert.equal(await probe({ kind: 'http', url, ...base }), 'HTTP 503');
    web.set('hang');
    const t0 = performance.now();
    assert.equal(await probe({ kind: 'http', url, ...base }), 'timed out after 300 ms');
    const took = performance.now() - t0;
    assert.ok(took >= 290 && took < 1000, `timeout took ${took.toFixed(0)} ms`);
    // stop() aborts an in-flight probe at once instead of holding a socket and timer for timeoutMs.
    const ac = new AbortController();
    const t1 = performance.now();
    const pending = probe({ kind: 'http', url, intervalMs: 1000, timeoutMs: 60_000 }, ac.signal);
    setTimeout(() => ac.abort(), 50);
    assert.equal(await pending, 'stopped');
    assert.ok(performance.now() - t1 < 1000);
  });

  it('serves a TCP-checked instance only while it accepts connections; other services keep their identity', async () => {
    const tcp = await tcpServer();
    const rec = await start(`services:
  - name: web
    instances:
      - { address: 127.0.0.1, port: ${tcp.port}, check: { tcp: ${tcp.port}, ${FAST} } }
      - { address: 10.0.0.9, port: 80 }
  - name: other
    instances:
      - { address: 10.0.0.1 }
`);
    const first = await rec.snapshotWhere(0, () => true);
    assert.deepEqual(view(first.snap), { 'default/web': [`10.0.0.9:80`, `127.0.0.1:${tcp.port}`], 'default/other': ['10.0.0.1:'] });
    await tcp.close();
    const down = await rec.snapshotWhere(first.index + 1, () => true);
    assert.deepEqual(view(down.snap)['default/web'], ['10.0.0.9:80']);
    assert.equal(down.snap.services.get('default/other'), first.snap.services.get('default/other'));
    assert.equal(rec.events.filter((e) => e.kind === 'error').length, 0, 'a failing check is not a backend error');
  });

  it('follows an HTTP check: 200 served, 503 dropped, 302 served again', async (t) => {
    const web = await httpServer();
    const rec = await start(`services:
  - name: api
    instances:
      - address: 127.0.0.1
        ports: { http: ${web.port} }
        check: { http: "http://127.0.0.1:${web.port}/health", ${FAST} }
`);
    const up = await rec.snapshotWhere(0, () => true);
    assert.deepEqual(view(up.snap)['default/api'], [`127.0.0.1:${web.port}`]);
    const t0 = performance.now();
    web.set(503);
    const down = await rec.snapshotWhere(up.index + 1, (s) => s.services.get('default/api')!.instances.length === 0);
    t.diagnostic(`503 → dropped after ${(down.at - t0).toFixed(0)} ms (intervalMs 100)`);
    web.set(302);
    await rec.snapshotWhere(down.index + 1, (s) => s.services.get('default/api')!.instances.length === 1);
  });

  it('the first snapshot waits for first verdicts (bounded by timeoutMs); failing ones are not served', async (t) => {
    const web = await httpServer();
    web.set('hang');
    const dead = await closedPort();
    const t0 = performance.now();
    const rec = await start(`services:
  - name: web
    instances:
      - { address: 127.0.0.1, port: ${web.port}, check: { http: "http://127.0.0.1:${web.port}/", intervalMs: 10000, timeoutMs: 300 } }
      - { address: 127.0.0.2, port: ${dead}, check: { tcp: "127.0.0.1:${dead}", ${FAST} } }
  - name: plain
    instances:
      - { address: 10.0.0.1 }
`);
    const first = await rec.snapshotWhere(0, () => true);
    const took = first.at - t0;
    t.diagnostic(`first snapshot after ${took.toFixed(0)} ms (slowest check timeoutMs 300)`);
    assert.ok(took >= 290 && took < 1000, `first snapshot after ${took.toFixed(0)} ms`);
    assert.deepEqual(view(first.snap), { 'default/web': [], 'default/plain': ['10.0.0.1:'] });
    assert.equal(first.index, 0, 'nothing was reported before the verdicts');
  });

  it('after the first sync a reload is not held back by a new, slow check', async () => {
    const web = await httpServer();
    web.set('hang');
    const file = path.join(dir, 'services.yaml');
    const rec = await start('services:\n  - name: plain\n    instances:\n      - { address: 10.0.0.1 }\n');
    await rec.snapshotWhere(0, () => true);
    const n = rec.events.length;
    const t0 = performance.now();
    await writeFile(
      file,
      `services:
  - name: plain
    instances:
      - { address: 10.0.0.2 }
  - name: slow
    instances:
      - { address: 127.0.0.1, check: { http: "http://127.0.0.1:${web.port}/", timeoutMs: 2000 } }
`,
    );
    const ev = await rec.snapshotWhere(n, () => true);
    assert.ok(ev.at - t0 < 500, `reload took ${(ev.at - t0).toFixed(0)} ms`);
    assert.deepEqual(view(ev.snap), { 'default/plain': ['10.0.0.2:'], 'default/slow': [] });
  });

  it('never probes `healthy: false` instances, and stops probing removed checks', async () => {
    const tcp = await tcpServer();
    const other = await tcpServer();
    const rec = await start(`services:
  - name: web
    instances:
      - { address: 127.0.0.1, port: ${tcp.port}, healthy: false, check: { tcp: ${tcp.port}, ${FAST} } }
      - { address: 127.0.0.2, check: { tcp: "127.0.0.1:${other.port}", ${FAST} } }
`);
    const first = await rec.snapshotWhere(0, () => true);
    assert.deepEqual(view(first.snap)['default/web'], ['127.0.0.2:']);
    // Remove the second check; wait until the reload is served, then count probes over several intervals.
    await writeFile(path.join(dir, 'services.yaml'), 'services:\n  - name: web\n');
    await rec.snapshotWhere(first.index + 1, (s) => s.services.get('default/web')!.instances.length === 0);
    const before = other.connections();
    await new Promise((r) => setTimeout(r, 400)); // 4 intervals: a live prober would connect again
    assert.equal(other.connections(), before, 'removed check stopped');
    assert.equal(tcp.connections(), 0, 'healthy:false instance never probed');
  });

  it('a health change while the file on disk is invalid is still served, and the backend stays stale', async () => {
    const tcp = await tcpServer();
    const text = `services:
  - name: web
    instances:
      - { address: 127.0.0.1, port: ${tcp.port}, check: { tcp: ${tcp.port}, ${FAST} } }
`;
    const rec = await start(text);
    const first = await rec.snapshotWhere(0, () => true);
    const n = rec.events.length;
    await writeFile(path.join(dir, 'services.yaml'), text.replace('127.0.0.1', '127.0.0.300'));
    for (const deadline = performance.now() + 3000; !rec.events.slice(n).some((e) => e.kind === 'error'); ) {
      assert.ok(performance.now() < deadline, 'invalid edit reported');
      await new Promise((r) => setTimeout(r, 10));
    }
    await tcp.close();
    const down = await rec.snapshotWhere(first.index + 1, (s) => s.services.get('default/web')!.instances.length === 0);
    // The snapshot is followed (synchronously) by the file error again, so the store keeps the backend stale (§6.3).
    const after = rec.events.slice(down.index).map((e) => (e.kind === 'error' ? e.err.code : e.kind));
    assert.deepEqual(after, ['snapshot', 'SVCDNS_BACKEND_BAD_DATA']);
  });
});

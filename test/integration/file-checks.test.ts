// Integration tests of static-file health checks (§6.1) against real TCP/HTTP servers on 127.0.0.1:0: an
// instance with a check is served only while its last probe passed; results re-emit snapshots; checks never
// hold back other changes after the first sync. Every wait is for an event (a snapshot, a probe that arrived);
// timeouts on probes that must pass are generous, so a loaded machine cannot turn them into failures (issue 9).

import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Backend } from '../../src/backends/backend.ts';
import { probe } from '../../src/backends/file/checks.ts';
import { configSchema, create } from '../../src/backends/file/index.ts';
import type { ServiceSnapshot } from '../../src/model/service.ts';
import { RecordingSink as Recorder } from '../helpers/recording-sink.ts';
import { waitFor } from '../helpers/server.ts';

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

/**
 * An HTTP server whose status is set by the test; `hang` makes it never answer. `arrived()` resolves at the next
 * request (an event to wait for instead of a time).
 */
async function httpServer(): Promise<{
  port: number;
  set: (s: number | 'hang') => void;
  requests: () => number;
  arrived: () => Promise<void>;
  /** Answer the requests held while hanging with `status`. */
  answerHeld: (status: number) => void;
}> {
  let status: number | 'hang' = 200;
  let n = 0;
  let waiting: (() => void)[] = [];
  const held: http.ServerResponse[] = [];
  const srv = http.createServer((req, res) => {
    n++;
    const w = waiting;
    waiting = [];
    for (const f of w) f();
    if (status === 'hang') {
      held.push(res);
      return;
    }
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
  return {
    port: (srv.address() as net.AddressInfo).port,
    set: (s) => (status = s),
    requests: () => n,
    arrived: () => new Promise<void>((r) => waiting.push(r)),
    answerHeld: (st) => {
      for (const res of held.splice(0)) res.writeHead(st).end();
    },
  };
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

/** Probes every 100 ms; a probe to a live local server may take long on a loaded machine, so the timeout is generous. */
const FAST = 'intervalMs: 100, timeoutMs: 20000';
/** Timeout of probes that must pass (ms): only a hang reaches it. */
const PASS_TIMEOUT_MS = 20_000;

describe('file backend: health checks (§6.1)', () => {
  it('probe(): TCP connect passes, a closed port fails, an HTTP 2xx/3xx passes, 5xx and a hang fail', async () => {
    const tcp = await tcpServer();
    const web = await httpServer();
    const dead = await closedPort();
    const base = { intervalMs: 1000, timeoutMs: PASS_TIMEOUT_MS };
    assert.equal(await probe({ kind: 'tcp', host: '127.0.0.1', port: tcp.port, ...base }), null);
    assert.match((await probe({ kind: 'tcp', host: '127.0.0.1', port: dead, ...base }))!, /ECONNREFUSED/);
    const url = `http://127.0.0.1:${web.port}/health`;
    assert.equal(await probe({ kind: 'http', url, ...base }), null);
    web.set(302);
    assert.equal(await probe({ kind: 'http', url, ...base }), null);
    web.set(503);
    assert.equal(await probe({ kind: 'http', url, ...base }), 'HTTP 503');
    web.set('hang');
    // A hang can only end by the timeout, so a short one is safe here: the verdict names it.
    assert.equal(await probe({ kind: 'http', url, intervalMs: 1000, timeoutMs: 300 }), 'timed out after 300 ms');
    // stop() aborts an in-flight probe instead of holding a socket and timer for timeoutMs: 'stopped', not a
    // timeout verdict after 60 s (which the test's own timeout would turn into a failure first).
    const ac = new AbortController();
    const arrived = web.arrived();
    const pending = probe({ kind: 'http', url, intervalMs: 1000, timeoutMs: 60_000 }, ac.signal);
    await arrived;
    ac.abort();
    assert.equal(await pending, 'stopped');
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

  it('follows an HTTP check: 200 served, 503 dropped, 302 served again', async () => {
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
    web.set(503);
    const down = await rec.snapshotWhere(up.index + 1, (s) => s.services.get('default/api')!.instances.length === 0);
    web.set(302);
    await rec.snapshotWhere(down.index + 1, (s) => s.services.get('default/api')!.instances.length === 1);
  });

  it('the first snapshot waits for first verdicts; failing ones are not served', async () => {
    const web = await httpServer();
    web.set('hang');
    const dead = await closedPort();
    const arrived = web.arrived();
    const rec = await start(`services:
  - name: web
    instances:
      - { address: 127.0.0.1, port: ${web.port}, check: { http: "http://127.0.0.1:${web.port}/", intervalMs: 10000, timeoutMs: ${PASS_TIMEOUT_MS} } }
      - { address: 127.0.0.2, port: ${dead}, check: { tcp: "127.0.0.1:${dead}", ${FAST} } }
  - name: plain
    instances:
      - { address: 10.0.0.1 }
`);
    await arrived; // the HTTP probe is in flight, its verdict pending
    assert.equal(rec.events.length, 0, 'nothing is reported while a first verdict is pending');
    web.answerHeld(200);
    const first = await rec.snapshotWhere(0, () => true);
    assert.deepEqual(view(first.snap), { 'default/web': [`127.0.0.1:${web.port}`], 'default/plain': ['10.0.0.1:'] });
    assert.equal(first.index, 0, 'nothing was reported before the verdicts');
  });

  it('a check that hangs holds the first snapshot only until its timeoutMs', async () => {
    const web = await httpServer();
    web.set('hang');
    const rec = await start(`services:
  - name: web
    instances:
      - { address: 127.0.0.1, port: ${web.port}, check: { http: "http://127.0.0.1:${web.port}/", intervalMs: 10000, timeoutMs: 300 } }
  - name: plain
    instances:
      - { address: 10.0.0.1 }
`);
    // The server never answers: the snapshot can only come from the timeout verdict.
    const first = await rec.snapshotWhere(0, () => true);
    assert.deepEqual(view(first.snap), { 'default/web': [], 'default/plain': ['10.0.0.1:'] });
    assert.equal(first.index, 0);
  });

  it('after the first sync a reload is not held back by a new, slow check', async () => {
    const web = await httpServer();
    web.set('hang');
    const file = path.join(dir, 'services.yaml');
    const rec = await start('services:\n  - name: plain\n    instances:\n      - { address: 10.0.0.1 }\n');
    await rec.snapshotWhere(0, () => true);
    const n = rec.events.length;
    // The new check hangs for 60 s, longer than any wait here: the reload must not wait for its verdict.
    await writeFile(
      file,
      `services:
  - name: plain
    instances:
      - { address: 10.0.0.2 }
  - name: slow
    instances:
      - { address: 127.0.0.1, check: { http: "http://127.0.0.1:${web.port}/", timeoutMs: 60000 } }
`,
    );
    const ev = await rec.snapshotWhere(n, () => true);
    assert.deepEqual(view(ev.snap), { 'default/plain': ['10.0.0.2:'], 'default/slow': [] });
  });

  it('never probes `healthy: false` instances, and stops probing removed checks', async () => {
    const tcp = await tcpServer();
    const other = await tcpServer();
    const clock = await tcpServer(); // a check that stays: its probes mark the intervals that pass
    const keep = `  - name: keep
    instances:
      - { address: 127.0.0.3, check: { tcp: "127.0.0.1:${clock.port}", ${FAST} } }
`;
    const rec = await start(`services:
  - name: web
    instances:
      - { address: 127.0.0.1, port: ${tcp.port}, healthy: false, check: { tcp: ${tcp.port}, ${FAST} } }
      - { address: 127.0.0.2, check: { tcp: "127.0.0.1:${other.port}", ${FAST} } }
${keep}`);
    const first = await rec.snapshotWhere(0, () => true);
    assert.deepEqual(view(first.snap)['default/web'], ['127.0.0.2:']);
    // Remove the second check; wait until the reload is served, then let the kept check probe 4 more times.
    await writeFile(path.join(dir, 'services.yaml'), `services:\n  - name: web\n${keep}`);
    await rec.snapshotWhere(first.index + 1, (s) => s.services.get('default/web')!.instances.length === 0);
    // A probe of the removed check that was connecting when it stopped is already accepted by the kernel; this
    // process counts it in its next poll phase. One more probe of the kept check passes through such a phase.
    const settled = clock.connections() + 1;
    await waitFor(() => clock.connections() >= settled);
    const before = other.connections();
    const ticks = clock.connections() + 4;
    await waitFor(() => clock.connections() >= ticks); // 4 intervals: a live prober would have connected again
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
    await rec.next('error', n); // the invalid edit is reported
    await tcp.close();
    const down = await rec.snapshotWhere(first.index + 1, (s) => s.services.get('default/web')!.instances.length === 0);
    // The snapshot is followed (synchronously) by the file error again, so the store keeps the backend stale (§6.3).
    const after = rec.events.slice(down.index).map((e) => (e.kind === 'error' ? e.err.code : e.kind));
    assert.deepEqual(after, ['snapshot', 'SVCDNS_BACKEND_BAD_DATA']);
  });
});

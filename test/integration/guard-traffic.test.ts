// Real traffic against the real app (issue 12 #1, #2, #4, #5): clients bound to many loopback addresses
// (127.0.0.0/8 is all local) flood over UDP while the rate limiter holds each /24 to its bucket and a client in
// another netblock keeps every answer; ACL rules over UDP and TCP, in the main thread and in workers, and
// across a reload; one source
// cannot take every TCP slot. Counts, never durations: the bucket refills at 0.001/s, so over the hang bound no
// refill can add a response whatever the speed of the machine; every limited response slips (slip 1), so every
// query gets exactly one reply to count.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { buildQuery, decode, type Decoded } from '../helpers/dns-client.ts';
import { HANG_DEADLINE_MS } from '../helpers/deadline.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';
import { validateConfig } from '../../src/config/load.ts';
import { metric as sample } from '../helpers/prom-text.ts';

const SAMPLE_DIR = fileURLToPath(new URL('../../config/', import.meta.url));
const BACKENDS = { backends: [{ type: 'file', path: 'services.yaml' }] };

/** One UDP query from a socket bound to `from`; resolves with the reply (the hang bound rejects). */
function udpFrom(port: number, from: string, msg: Buffer): Promise<Decoded> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const id = msg.readUInt16BE(0);
    const timer = setTimeout(() => done(new Error(`no UDP reply to ${from} within ${HANG_DEADLINE_MS} ms`)), HANG_DEADLINE_MS);
    const done = (err: Error | null, m?: Buffer) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(decode(m!));
    };
    sock.on('message', (m) => {
      if (m.readUInt16BE(0) === id) done(null, m);
    });
    sock.on('error', (e) => done(e));
    sock.bind(0, from, () => sock.send(msg, port, '127.0.0.1'));
  });
}

/**
 * Whether a UDP query from `from` went unanswered: it is sent first, then a sentinel A query that the ACL lets
 * through, and the first's replies are collected until the sentinel's arrives (empty: dropped). The sentinel goes
 * from the same socket when `from` may ask A (one 4-tuple stays on one thread's socket, which reads datagrams in
 * order), else from 127.0.0.1 — only valid with one thread answering, whose one socket reads both in order; a
 * reply to the first would then already sit in our socket (loopback delivers at send).
 */
function udpDroppedFrom(port: number, from: string, msg: Buffer, sameSocket: boolean): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const a = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    const sentinel = buildQuery('web.service.sd.internal', 'A', { id: 7 });
    const timer = setTimeout(() => finish(new Error('sentinel not answered')), HANG_DEADLINE_MS);
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      a.close();
      if (err) reject(err);
      else resolve(got);
    };
    a.on('message', (m) => {
      if (sameSocket && m.readUInt16BE(0) === 7) finish(null);
      else got.push(m);
    });
    a.bind(0, from, () =>
      a.send(msg, port, '127.0.0.1', () => {
        if (sameSocket) a.send(sentinel, port, '127.0.0.1');
        else
          udpFrom(port, '127.0.0.1', sentinel)
            .then(() => setImmediate(() => setImmediate(() => finish(null))))
            .catch((e: Error) => finish(e));
      }),
    );
  });
}

/** One TCP query from `from`; resolves with the reply, or null when the server closes without one. */
function tcpFrom(port: number, from: string, msg: Buffer): Promise<Decoded | null> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no TCP reply to ${from} within ${HANG_DEADLINE_MS} ms`));
    }, HANG_DEADLINE_MS);
    s.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      s.write(Buffer.concat([len, msg]));
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer);
        s.destroy();
        resolve(decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

/** A sample's value, 0 when absent (a counter not yet incremented is not exported). */
const metric = (text: string, name: string, labels: Record<string, string> = {}): number => sample(text, name, labels) ?? 0;

const BURST = 5;

describe('rate limiting under a flood from many loopback sources (issue 12 #1, #5)', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer(
      { ...BACKENDS, rateLimit: { enabled: true, responsesPerSecond: 0.001, burst: BURST, slip: 1 } },
      { configDir: SAMPLE_DIR },
    );
    await waitFor(() => !srv.app.store.anyPending);
  });
  after(() => srv.stop());

  it('each flooding /24 gets exactly its burst, the rest slips (TC=1, empty); a client in another /24 keeps every answer; TCP is never limited', async () => {
    const q = () => buildQuery('web.service.sd.internal', 'A', { id: 1 + Math.floor(Math.random() * 60000) });
    // 2 netblocks x 8 sources x 4 queries, every source sending at once; the well-behaved client in between.
    const floodNets = ['127.0.1', '127.1.2'];
    const flood = floodNets.flatMap((net) =>
      Array.from({ length: 8 }, async (_, i) => {
        const replies: Decoded[] = [];
        for (let k = 0; k < 4; k++) replies.push(await udpFrom(srv.port, `${net}.${i + 1}`, q()));
        return { net, replies };
      }),
    );
    const good: Decoded[] = [];
    for (let k = 0; k < BURST; k++) good.push(await udpFrom(srv.port, '127.0.3.1', q()));
    const results = await Promise.all(flood);
    for (const net of floodNets) {
      const replies = results.filter((r) => r.net === net).flatMap((r) => r.replies);
      const full = replies.filter((r) => !r.flag_tc);
      const slipped = replies.filter((r) => r.flag_tc);
      assert.equal(full.length, BURST, `${net}.0/24: ${full.length} full answers`);
      assert.equal(slipped.length, 32 - BURST);
      for (const r of full) assert.equal(r.answers?.length, 2);
      for (const r of slipped) assert.equal((r.answers?.length ?? 0) + (r.authorities?.length ?? 0) + (r.additionals?.length ?? 0), 0);
    }
    assert.equal(good.filter((r) => !r.flag_tc && r.answers?.length === 2).length, BURST, 'the well-behaved client got every answer');
    // The retry a slipped client makes: TCP, answered in full.
    const overTcp = await tcpFrom(srv.port, '127.0.1.1', q());
    assert.equal(overTcp?.flag_tc, false);
    assert.equal(overTcp?.answers?.length, 2);
    const text = await srv.app.metrics.registry.metrics();
    assert.equal(metric(text, 'svcdns_rate_limited_responses_total', { action: 'slipped' }), 2 * (32 - BURST));
    assert.equal(metric(text, 'svcdns_rate_limited_responses_total', { action: 'dropped' }), 0);
  });
});

const ACL_RULES = [
  { action: 'allow', from: '127.0.4.7' },
  { action: 'refuse', from: '127.0.4.0/24' },
  { action: 'drop', from: '127.0.5.0/24' },
  { action: 'drop', from: '127.0.6.0/24', types: ['ANY'] },
];

for (const workers of [1, 2]) {
  describe(`client ACL over UDP and TCP, workers: ${workers} (issue 12 #2)`, () => {
    let srv: TestServer;
    before(async () => {
      // A long idle timeout: a TCP drop must close the connection itself, not leave it to the idle timer.
      srv = await startServer({ ...BACKENDS, workers, acl: ACL_RULES, tcp: { idleTimeoutMs: 600_000 } }, { configDir: SAMPLE_DIR });
      await waitFor(() => !srv.app.store.anyPending);
    });
    after(() => srv.stop());

    it('refuse: REFUSED with the question and OPT echoed (§5.6), over UDP and TCP; an earlier allow wins', async () => {
      const u = await udpFrom(srv.port, '127.0.4.1', buildQuery('web.service.sd.internal', 'A', { id: 11, edns: 1232 }));
      assert.equal(u.rcode, 'REFUSED');
      assert.equal(u.id, 11);
      assert.equal(u.questions?.[0]?.name, 'web.service.sd.internal');
      assert.equal(u.answers?.length ?? 0, 0);
      assert.ok(u.additionals?.some((r) => r.type === 'OPT'), 'OPT echoed');
      const t = await tcpFrom(srv.port, '127.0.4.1', buildQuery('web.service.sd.internal', 'A', { id: 12 }));
      assert.equal(t?.rcode, 'REFUSED');
      const ok = await udpFrom(srv.port, '127.0.4.7', buildQuery('web.service.sd.internal', 'A', { id: 13 }));
      assert.equal(ok.rcode, 'NOERROR');
      assert.equal(ok.answers?.length, 2);
    });

    it('drop: no reply at all; a rule limited to ANY drops ANY and answers A', async () => {
      // Dropped for every type: provable by order only with one thread answering (see udpDroppedFrom).
      if (workers === 1) assert.deepEqual(await udpDroppedFrom(srv.port, '127.0.5.1', buildQuery('web.service.sd.internal', 'A', { id: 21 }), false), []);
      assert.deepEqual(await udpDroppedFrom(srv.port, '127.0.6.1', buildQuery('web.service.sd.internal', 'ANY', { id: 22 }), true), []);
      assert.equal(await tcpFrom(srv.port, '127.0.5.1', buildQuery('web.service.sd.internal', 'A', { id: 25 })), null, 'TCP: closed at once, no reply');
      const a = await udpFrom(srv.port, '127.0.6.1', buildQuery('web.service.sd.internal', 'A', { id: 23 }));
      assert.equal(a.answers?.length, 2);
      const other = await udpFrom(srv.port, '127.0.8.1', buildQuery('web.service.sd.internal', 'A', { id: 24 }));
      assert.equal(other.rcode, 'NOERROR', 'no rule matches: allowed');
      await waitFor(async () => metric(await srv.app.metrics.registry.metrics(), 'svcdns_acl_requests_total', { action: 'drop' }) === (workers === 1 ? 3 : 2));
      const text = await srv.app.metrics.registry.metrics();
      assert.ok(metric(text, 'svcdns_acl_requests_total', { action: 'refuse' }) >= 1);
    });
  });
}

for (const workers of [1, 2]) {
  describe(`acl and rateLimit follow a config reload, workers: ${workers} (issue 12 #2)`, () => {
    it('a reload that adds a refuse rule refuses from the next query on, over UDP and TCP; removing it allows again', async () => {
      const raw = { ...BACKENDS, workers, listen: '127.0.0.1:0' };
      const srv = await startServer(raw, { configDir: SAMPLE_DIR });
      try {
        await waitFor(() => !srv.app.store.anyPending);
        const q = (id: number) => buildQuery('web.service.sd.internal', 'A', { id });
        assert.equal((await udpFrom(srv.port, '127.0.4.1', q(41))).rcode, 'NOERROR');
        const plan = await srv.app.reload(validateConfig({ ...raw, acl: [{ action: 'refuse', from: '127.0.4.0/24' }] }, 'reload'));
        assert.equal(plan.guardChanged, true);
        assert.deepEqual(plan.restartRequired, []);
        // Workers get it by message, each in its own time, and every fresh socket may land on either: one changed
        // answer proves one thread has it. Wait until 20 fresh sockets in a row agree, so both threads have it.
        const allAnswer = async (rcode: string, id: number): Promise<boolean> => {
          for (let i = 0; i < 20; i++) if ((await udpFrom(srv.port, '127.0.4.1', q(id))).rcode !== rcode) return false;
          return true;
        };
        await waitFor(() => allAnswer('REFUSED', 42));
        await waitFor(async () => (await tcpFrom(srv.port, '127.0.4.1', q(43)))?.rcode === 'REFUSED');
        for (let i = 0; i < 10; i++) assert.equal((await udpFrom(srv.port, '127.0.4.1', q(44 + i))).rcode, 'REFUSED');
        assert.equal((await udpFrom(srv.port, '127.0.5.1', q(60))).rcode, 'NOERROR');
        await srv.app.reload(validateConfig(raw, 'reload'));
        await waitFor(() => allAnswer('NOERROR', 61));
        for (let i = 0; i < 10; i++) assert.equal((await udpFrom(srv.port, '127.0.4.1', q(62 + i))).rcode, 'NOERROR');
      } finally {
        await srv.stop();
      }
    });
  });
}

describe('TCP connections per source (issue 12 #4)', () => {
  it('one client holding idle connections cannot keep another client out: tcp.maxConnectionsPerSource (default 100)', async () => {
    const srv = await startServer({ ...BACKENDS, tcp: { maxConnections: 150 } }, { configDir: SAMPLE_DIR });
    const socks: net.Socket[] = [];
    try {
      await waitFor(() => !srv.app.store.anyPending);
      let closedByServer = 0;
      for (let i = 0; i < 150; i++) {
        const s = net.connect({ port: srv.port, host: '127.0.0.1' });
        s.on('error', () => {});
        s.on('close', () => closedByServer++);
        socks.push(s);
      }
      // The 50 beyond the per-source cap are closed by the server; the 100 stay open, idle.
      await waitFor(() => closedByServer === 50);
      const other = await tcpFrom(srv.port, '127.0.9.1', buildQuery('web.service.sd.internal', 'A', { id: 31 }));
      assert.equal(other?.rcode, 'NOERROR', 'another client still gets TCP');
      assert.equal(other?.answers?.length, 2);
      const text = await srv.app.metrics.registry.metrics();
      assert.equal(metric(text, 'svcdns_dns_tcp_connections_refused_total'), 50);
      assert.equal(closedByServer, 50);
    } finally {
      for (const s of socks) s.destroy();
      await srv.stop();
    }
  });
});

// Transport and wire rules (dns-behaviour.md §4, §5.5–§5.7) with raw packets over real UDP and TCP.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as dnsPacket from 'dns-packet';
import { buildQuery, decode, query, rcode, tcpRaw, udpDropped, udpRaw } from '../helpers/dns-client.ts';
import { inst, put, startStack, svc, type Stack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/server.ts';

const D = 'sd.internal';

/** Header (12 bytes) + raw rest. */
function header(id: number, flags: number, qd: number, an = 0, ns = 0, ar = 0): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(flags, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(an, 6);
  b.writeUInt16BE(ns, 8);
  b.writeUInt16BE(ar, 10);
  return b;
}
function qname(name: string): Buffer {
  return Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
}
function question(name: string, type = 1, cls = 1): Buffer {
  const t = Buffer.alloc(4);
  t.writeUInt16BE(type, 0);
  t.writeUInt16BE(cls, 2);
  return Buffer.concat([qname(name), t]);
}
/** OPT RR: owner, udp size, ext-rcode, version, flags word, rdata. */
function opt(size = 1232, version = 0, flags = 0, rdata: Buffer = Buffer.alloc(0), owner: Buffer = Buffer.from([0])): Buffer {
  const b = Buffer.alloc(10);
  b.writeUInt16BE(41, 0);
  b.writeUInt16BE(size, 2);
  b[4] = 0;
  b[5] = version;
  b.writeUInt16BE(flags, 6);
  b.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([owner, b, rdata]);
}
function rcodeOf(raw: Buffer): number {
  return raw[3]! & 0x0f;
}
function optOf(raw: Buffer): { size: number; extRcode: number; version: number; flags: number; rdlen: number } | null {
  const d = decode(raw);
  const o = (d.additionals ?? []).find((a) => a.type === 'OPT') as
    | { udpPayloadSize: number; extendedRcode: number; ednsVersion: number; flags: number; options: unknown[] }
    | undefined;
  if (!o) return null;
  return { size: o.udpPayloadSize, extRcode: o.extendedRcode, version: o.ednsVersion, flags: o.flags, rdlen: o.options.length };
}

/** Bounds a wait on an event; it only turns a hang into a failure (never a timing assertion). */
const HANG_MS = 30_000;
async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), HANG_MS)));
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(t);
  }
}
/** A DNS message with its 2-byte TCP length prefix. */
function frame(m: Buffer): Buffer {
  return Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]);
}
/** Collect length-framed replies from a TCP socket: their IDs and raw bytes, in arrival order. */
function collectReplies(sock: net.Socket): { ids: number[]; raw: Buffer[] } {
  const out = { ids: [] as number[], raw: [] as Buffer[] };
  let acc = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    acc = Buffer.concat([acc, d]);
    while (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
      const m = acc.subarray(2, 2 + acc.readUInt16BE(0));
      out.ids.push(m.readUInt16BE(0));
      out.raw.push(m);
      acc = acc.subarray(2 + m.length);
    }
  });
  return out;
}

describe('size and transport (§4)', () => {
  let s: Stack;
  const many = Array.from({ length: 60 }, (_, i) => inst(`10.2.${Math.floor(i / 250)}.${(i % 250) + 1}`, [80]));
  before(async () => {
    s = await startStack();
    put(s.store, 'b', [svc('big', many), svc('web', [inst('10.0.0.1', [80])])]);
  });
  after(() => s.stop());

  it('§4.2 without EDNS the limit is 512: TC=1, whole records, never over 512', async () => {
    const r = await query(s.port, `big.service.${D}`, 'A');
    assert.ok(r.raw.length <= 512, `${r.raw.length}`);
    assert.equal(r.flag_tc, true);
    assert.ok(r.answers!.length > 0 && r.answers!.length < 60);
  });

  it('§4.2 with EDNS: min(client size, maxUdpPayload); a 4096 client gets at most 1232', async () => {
    const small = await query(s.port, `big.service.${D}`, 'SRV', { edns: 700 });
    assert.ok(small.raw.length <= 700);
    assert.equal(small.flag_tc, true);
    const big = await query(s.port, `big.service.${D}`, 'SRV', { edns: 4096 });
    assert.ok(big.raw.length <= 1232, `${big.raw.length}`);
    assert.ok(big.raw.length > 700);
    assert.equal(optOf(big.raw)!.size, 1232, 'our OPT advertises maxUdpPayload (§5.6)');
    const tiny = await query(s.port, `big.service.${D}`, 'A', { edns: 100 });
    assert.ok(tiny.raw.length <= 512 && tiny.answers!.length > 0, 'sizes below 512 count as 512');
  });

  it('§4.2 truncated SRV keeps Additional consistent with the surviving targets; never empty Answer with Additional', async () => {
    for (const size of [512, 700, 1232]) {
      const r = await query(s.port, `big.service.${D}`, 'SRV', size === 512 ? {} : { edns: size });
      assert.equal(r.flag_tc, true);
      assert.ok(r.answers!.length > 0);
      const targets = new Set(r.answers!.map((a) => (a as dnsPacket.SrvAnswer).data.target));
      const glue = (r.additionals ?? []).filter((a) => a.type === 'A').map((a) => a.name);
      assert.deepEqual(new Set(glue), targets, `size ${size}: every surviving target has glue, and only those`);
    }
  });

  it('§4.3 TCP carries the whole answer', async () => {
    const r = await query(s.port, `big.service.${D}`, 'SRV', { tcp: true });
    assert.equal(r.flag_tc, false);
    assert.equal(r.answers!.length, 60);
    assert.equal((r.additionals ?? []).filter((a) => a.type === 'A').length, 60);
  });

  it('§4.1 TCP: several pipelined queries on one connection, answered in order, split across writes', async () => {
    const msgs = [1, 2, 3, 4].map((id) => buildQuery(`web.service.${D}`, 'A', { id }));
    const replies = await tcpRaw(s.port, msgs);
    assert.deepEqual(replies.map((r) => decode(r).id), [1, 2, 3, 4]);
    // One message dribbled a byte at a time still gets its answer.
    const one = buildQuery(`web.service.${D}`, 'A', { id: 77 });
    const framed = Buffer.concat([Buffer.from([0, one.length]), one]);
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const sock = net.connect(s.port, '127.0.0.1');
      let acc = Buffer.alloc(0);
      sock.on('connect', async () => {
        for (const byte of framed) {
          sock.write(Buffer.from([byte]));
          await new Promise((r) => setImmediate(r));
        }
      });
      sock.on('data', (d) => {
        acc = Buffer.concat([acc, d]);
        if (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
          sock.destroy();
          resolve(acc.subarray(2));
        }
      });
      sock.on('error', reject);
    });
    assert.equal(decode(reply).id, 77);
  });

  it('§4.1 TCP idle connections are closed after the idle timeout', async () => {
    const st = await startStack({ tcpIdleTimeoutMs: 150 });
    const sock = net.connect(st.port, '127.0.0.1');
    try {
      sock.on('error', () => {});
      // The server closing an idle connection is the event; the long bound only turns a hang into a failure.
      const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
      await within(closed, 'the idle connection to be closed');
      await waitFor(() => st.server.openTcpConnections === 0, HANG_MS);
    } finally {
      sock.destroy();
      await st.stop();
    }
  });

  it('§4.1 §5.7 a TCP client dribbling one message forever is dropped by the per-message deadline (slowloris), not the idle timer', async () => {
    // The idle timer (60 s) outlasts the wait below: only the per-message deadline can close this connection.
    const st = await startStack({ tcpIdleTimeoutMs: 60_000, tcpMessageDeadlineMs: 200 });
    const sock = net.connect(st.port, '127.0.0.1');
    let drip: NodeJS.Timeout | undefined;
    try {
      sock.on('error', () => {});
      await new Promise((r) => sock.once('connect', r));
      const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
      sock.write(Buffer.from([0, 40])); // announces a 40-byte query...
      let sent = 0;
      drip = setInterval(() => {
        if (sent < 39 && sock.writable) {
          sock.write(Buffer.from([0])); // ...that never completes: one byte short at most
          sent++;
        }
      }, 20);
      await within(closed, 'the dribbling connection to be dropped');
      assert.ok(sent < 40, 'the message was never complete');
    } finally {
      clearInterval(drip);
      sock.destroy();
      await st.stop();
    }
  });

  it('§4.1 TCP pipelining whose chunks keep ending mid-message is never cut off: the deadline is per message', async () => {
    // 80 messages, each chunk = the second half of one message + the first half of the next, so the connection
    // always holds a partial message. The gaps between chunks (25 ms each, 2 s in all) are far below the 1 s
    // deadline for any one message but far above it in sum: a deadline that is never re-armed drops the client.
    const st = await startStack({ tcpIdleTimeoutMs: 60_000, tcpMessageDeadlineMs: 1000 });
    put(st.store, 'b', [svc('web', [inst('10.0.0.1', [80])])]);
    const sock = net.connect(st.port, '127.0.0.1');
    try {
      sock.on('error', () => {});
      await new Promise((r) => sock.once('connect', r));
      const N = 80;
      const framed = Array.from({ length: N }, (_, i) => frame(buildQuery(`web.service.${D}`, 'A', { id: i + 1 })));
      const replies = collectReplies(sock);
      let closed = false;
      sock.on('close', () => (closed = true));
      const half = (i: number) => Math.floor(framed[i]!.length / 2);
      sock.write(framed[0]!.subarray(0, half(0)));
      for (let i = 0; i < N; i++) {
        const tail = framed[i]!.subarray(half(i));
        const head = i + 1 < N ? framed[i + 1]!.subarray(0, half(i + 1)) : Buffer.alloc(0);
        await new Promise((r) => setTimeout(r, 25));
        assert.equal(closed, false, `connection dropped before message ${i + 1}`);
        sock.write(Buffer.concat([tail, head]));
        await waitFor(() => replies.ids.length >= i + 1 || closed, HANG_MS);
      }
      assert.deepEqual(replies.ids, Array.from({ length: N }, (_, i) => i + 1), 'every message answered, in order');
      assert.equal(closed, false);
    } finally {
      sock.destroy();
      await st.stop();
    }
  });

  it('§4.1 TCP framing: a split at any byte (inside the length prefix too) and a 64 KB message in 1 KB pieces are answered', async () => {
    const st = await startStack();
    put(st.store, 'b', [svc('web', [inst('10.0.0.1', [80])])]);
    try {
      const stream = Buffer.concat([1, 2].map((id) => frame(buildQuery(`web.service.${D}`, 'A', { id }))));
      for (let at = 1; at < stream.length; at++) {
        const sock = net.connect(st.port, '127.0.0.1');
        try {
          sock.on('error', () => {});
          await new Promise((r) => sock.once('connect', r));
          const replies = collectReplies(sock);
          sock.write(stream.subarray(0, at));
          await new Promise((r) => setImmediate(r));
          sock.write(stream.subarray(at));
          await waitFor(() => replies.ids.length >= 2, HANG_MS);
          assert.deepEqual(replies.ids, [1, 2], `split at byte ${at}`);
        } finally {
          sock.destroy();
        }
      }
      // The largest message there is: a query padded (EDNS option 12, RFC 7830) to 65535 bytes.
      const base = Buffer.concat([header(4242, 0x0100, 1, 0, 0, 1), question(`web.service.${D}`)]);
      const padLen = 65_535 - base.length - 11 - 4;
      const pad = Buffer.alloc(4 + padLen);
      pad.writeUInt16BE(12, 0);
      pad.writeUInt16BE(padLen, 2);
      const big = Buffer.concat([base, opt(1232, 0, 0, pad)]);
      assert.equal(big.length, 65_535);
      const sock = net.connect(st.port, '127.0.0.1');
      try {
        sock.on('error', () => {});
        await new Promise((r) => sock.once('connect', r));
        const replies = collectReplies(sock);
        const framedBig = frame(big);
        for (let off = 0; off < framedBig.length; off += 1024) sock.write(framedBig.subarray(off, off + 1024));
        await waitFor(() => replies.ids.length >= 1, HANG_MS);
        assert.deepEqual(replies.ids, [4242]);
        assert.equal(rcodeOf(replies.raw[0]!), 0);
      } finally {
        sock.destroy();
      }
    } finally {
      await st.stop();
    }
  });

  it('§4.1 §5.7 a TCP client that sends queries but never reads answers is dropped once its backlog is large', async () => {
    // A long idle timeout: only the backlog cap can close this connection in time.
    const st = await startStack({ tcpIdleTimeoutMs: 30_000 });
    put(st.store, 'b', [svc('big', Array.from({ length: 200 }, (_, i) => inst(`10.3.${i >> 8}.${(i & 255) + 1}`, [80])))]);
    try {
      const sock = net.connect(st.port, '127.0.0.1');
      sock.on('error', () => {});
      await new Promise((r) => sock.once('connect', r));
      sock.pause(); // never read
      const q = buildQuery(`big.service.${D}`, 'SRV', { id: 1 });
      const framed = Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q]);
      // Each answer is ~9 KB; loopback socket buffers absorb several MB, so ask for ~45 MB of answers. The server
      // must stop reading (backpressure) and drop the stalled connection, not buffer it all. (The paused client
      // would never see the close, so the server's own count is checked.)
      for (let i = 0; i < 5000 && !sock.destroyed; i++) sock.write(framed);
      await waitFor(() => st.server.openTcpConnections === 0);
      sock.destroy();
      assert.equal(rcode(await query(st.port, `big.service.${D}`, 'A', { tcp: true })), 'NOERROR', 'others still served');
    } finally {
      await st.stop();
    }
  });

  it('§4.1 TCP connections beyond the cap are refused while the others keep working', async () => {
    const st = await startStack({ tcpMaxConnections: 2 });
    put(st.store, 'b', [svc('web', [inst('10.0.0.1', [80])])]);
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const sk = net.connect(st.port, '127.0.0.1');
        sk.on('error', () => {});
        await new Promise((r) => sk.once('connect', r));
        socks.push(sk);
      }
      // Wait until the server has counted both.
      for (let i = 0; i < 100 && st.server.openTcpConnections < 2; i++) await new Promise((r) => setTimeout(r, 10));
      const third = net.connect(st.port, '127.0.0.1');
      const closed = await new Promise<boolean>((resolve) => {
        third.on('close', () => resolve(true));
        third.on('error', () => {});
        setTimeout(() => resolve(false), 2000);
      });
      assert.equal(closed, true, 'the connection over the cap is closed');
      const r = await query(st.port, `web.service.${D}`, 'A');
      assert.equal(rcode(r), 'NOERROR', 'UDP unaffected');
    } finally {
      for (const sk of socks) sk.destroy();
      await st.stop();
    }
  });
});

describe('bad input (§5.5–§5.7)', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
    put(s.store, 'b', [svc('web', [inst('10.0.0.1', [80])])]);
  });
  after(() => s.stop());

  const wellFormed = async () => {
    const r = await query(s.port, `web.service.${D}`, 'A');
    assert.equal(rcode(r), 'NOERROR');
  };

  it('§5.5 a message shorter than a header, or with QR=1, is dropped silently', async () => {
    const sentinel = buildQuery(`web.service.${D}`, 'A', { id: 4242 });
    assert.deepEqual(await udpDropped(s.port, Buffer.from([1, 2, 3]), sentinel), []);
    assert.deepEqual(await udpDropped(s.port, Buffer.alloc(0), sentinel), []);
    const resp = Buffer.concat([header(9, 0x8000, 1), question(`web.service.${D}`)]);
    assert.deepEqual(await udpDropped(s.port, resp, sentinel), []);
    await wellFormed();
  });

  it('§5.5 opcode other than QUERY → NOTIMP, AA=0, empty sections, opcode and ID echoed', async () => {
    for (const opcode of [1, 2, 4, 5]) {
      const raw = await udpRaw(s.port, Buffer.concat([header(0xbeef, opcode << 11, 1), question(`web.service.${D}`)]));
      assert.ok(raw);
      assert.equal(raw.readUInt16BE(0), 0xbeef);
      assert.equal(rcodeOf(raw), 4);
      assert.equal((raw[2]! >> 3) & 0xf, opcode);
      assert.equal(raw[2]! & 0x04, 0, 'AA=0');
      assert.deepEqual([raw.readUInt16BE(4), raw.readUInt16BE(6), raw.readUInt16BE(8), raw.readUInt16BE(10)], [0, 0, 0, 0]);
    }
  });

  it('§5.5 RFC 6895 §2 NOTIMP echoes no flags but the opcode: RD, CD, TC, AD and Z are not echoed (genreport opcodeflg)', async () => {
    // Every flag a query can carry (TC, RD, Z, AD, CD; AA too), for each unimplemented opcode.
    const allFlags = 0x0400 | 0x0200 | 0x0100 | 0x0040 | 0x0020 | 0x0010;
    for (const opcode of [1, 2, 4, 5, 6, 15]) {
      const raw = await udpRaw(s.port, Buffer.concat([header(0x1234 + opcode, (opcode << 11) | allFlags, 1), question(`web.service.${D}`)]));
      assert.ok(raw, `opcode ${opcode}: got a reply`);
      assert.equal(raw.readUInt16BE(0), 0x1234 + opcode, `opcode ${opcode}: ID`);
      assert.equal(raw.readUInt16BE(2).toString(16), (0x8000 | (opcode << 11) | 4).toString(16), `opcode ${opcode}: QR, opcode and NOTIMP only`);
      assert.deepEqual([raw.readUInt16BE(4), raw.readUInt16BE(6), raw.readUInt16BE(8), raw.readUInt16BE(10)], [0, 0, 0, 0]);
    }
    // A QUERY with the same flags still gets RD and CD echoed (§3.7).
    const q = (await udpRaw(s.port, Buffer.concat([header(77, 0x0100 | 0x0010, 1), question(`web.service.${D}`)])))!;
    assert.equal(q.readUInt16BE(2) & 0x0110, 0x0110);
  });

  const formerr = async (label: string, msg: Buffer, id: number) => {
    const raw = await udpRaw(s.port, msg);
    assert.ok(raw, `${label}: got a reply`);
    assert.equal(raw.readUInt16BE(0), id, `${label}: ID`);
    assert.equal(rcodeOf(raw), 1, `${label}: FORMERR`);
    assert.equal(raw[2]! & 0x80, 0x80, `${label}: QR`);
  };

  it('§5.5 QDCOUNT 0 or 2 → FORMERR with the query ID', async () => {
    await formerr('qd0', header(101, 0x0100, 0), 101);
    await formerr('qd2', Buffer.concat([header(102, 0x0100, 2), question(`web.service.${D}`), question(`web.service.${D}`)]), 102);
  });

  it('§5.5 truncated or malformed question names → FORMERR', async () => {
    const q = question(`web.service.${D}`);
    await formerr('cut name', Buffer.concat([header(103, 0, 1), q.subarray(0, 6)]), 103);
    await formerr('no type/class', Buffer.concat([header(104, 0, 1), qname(`web.service.${D}`)]), 104);
    await formerr('label past end', Buffer.concat([header(105, 0, 1), Buffer.from([40, 0x61, 0x62])]), 105);
    await formerr('extended label type', Buffer.concat([header(106, 0, 1), Buffer.from([0x41, 0, 0, 1, 0, 1])]), 106);
    // Compression loop: a pointer to itself, and forward pointers.
    await formerr('self pointer', Buffer.concat([header(107, 0, 1), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), 107);
    await formerr('forward pointer', Buffer.concat([header(108, 0, 1), Buffer.from([0xc0, 14, 0, 1, 0, 1, 0])]), 108);
    const long = Array.from({ length: 5 }, () => 'a'.repeat(63)).join('.');
    await formerr('name over 255', Buffer.concat([header(109, 0, 1), question(long)]), 109);
  });

  it('§5.5 RFC 1035 §2.3.4: a QNAME of 256 octets (root octet included) is FORMERR; 255 octets is answered', async () => {
    /** A name under D whose wire form, root octet included, is exactly `octets` long. */
    const nameOf = (octets: number) => {
      let left = octets - (D.length + 2); // D's labels and the root octet
      const labels: string[] = [];
      while (left > 0) {
        const l = Math.min(63, left - 1);
        labels.push('a'.repeat(l));
        left -= l + 1;
      }
      const name = `${labels.join('.')}.${D}`;
      assert.equal(qname(name).length, octets);
      return name;
    };
    await formerr('256 octets', Buffer.concat([header(114, 0x0100, 1), question(nameOf(256))]), 114);
    const ok = (await udpRaw(s.port, Buffer.concat([header(115, 0x0100, 1), question(nameOf(255))])))!;
    assert.equal(rcodeOf(ok), 3, '255 octets: an ordinary NXDOMAIN');
  });

  it('§5.5 two OPT records, an OPT not at the root, or a broken OPT → FORMERR', async () => {
    const q = question(`web.service.${D}`);
    await formerr('two OPT', Buffer.concat([header(110, 0, 1, 0, 0, 2), q, opt(), opt()]), 110);
    await formerr('OPT owner', Buffer.concat([header(111, 0, 1, 0, 0, 1), q, opt(1232, 0, 0, Buffer.alloc(0), qname('x'))]), 111);
    await formerr('OPT option overruns', Buffer.concat([header(112, 0, 1, 0, 0, 1), q, opt(1232, 0, 0, Buffer.from([0, 10, 0, 9, 1]))]), 112);
    await formerr('ARCOUNT past end', Buffer.concat([header(113, 0, 1, 0, 0, 1), q]), 113);
  });

  it('§5.5 class other than IN/ANY → REFUSED; AXFR/IXFR → REFUSED (UDP and TCP)', async () => {
    const ch = await udpRaw(s.port, Buffer.concat([header(120, 0, 1), question('version.bind', 16, 3)]));
    assert.equal(rcodeOf(ch!), 5);
    const any = await udpRaw(s.port, Buffer.concat([header(121, 0, 1), question(`web.service.${D}`, 1, 255)]));
    assert.equal(rcodeOf(any!), 0);
    for (const t of [252, 251]) {
      const msg = Buffer.concat([header(122, 0, 1), question(D, t)]);
      assert.equal(rcodeOf((await udpRaw(s.port, msg))!), 5);
      assert.equal(rcodeOf((await tcpRaw(s.port, [msg]))[0]!), 5);
    }
  });

  it('§5.6 OPT answered with OPT: version 0, our size, DO copied, unknown options and flags not echoed', async () => {
    const q = question(`web.service.${D}`);
    const withOption = opt(4096, 0, 0x8000 | 0x1234, Buffer.from([0xfd, 0xe9, 0, 2, 0xab, 0xcd]));
    const raw = (await udpRaw(s.port, Buffer.concat([header(130, 0x0100, 1, 0, 0, 1), q, withOption])))!;
    assert.equal(rcodeOf(raw), 0);
    const o = optOf(raw)!;
    assert.equal(o.version, 0);
    assert.equal(o.size, 1232);
    assert.equal(o.flags, 0x8000, 'DO copied, other flags dropped');
    assert.equal(o.rdlen, 0, 'no options echoed');
    const noDo = (await udpRaw(s.port, Buffer.concat([header(131, 0, 1, 0, 0, 1), q, opt()])))!;
    assert.equal(optOf(noDo)!.flags, 0);
    const plain = (await udpRaw(s.port, Buffer.concat([header(132, 0, 1), q])))!;
    assert.equal(optOf(plain), null, 'no OPT without EDNS');
  });

  it('§5.6 the reserved Z bit is not echoed; CD is', async () => {
    const raw = (await udpRaw(s.port, Buffer.concat([header(133, 0x0100 | 0x0040 | 0x0010, 1), question(`web.service.${D}`)])))!;
    assert.equal(raw.readUInt16BE(2) & 0x0040, 0);
    assert.equal(raw.readUInt16BE(2) & 0x0010, 0x0010);
  });

  it('§5.6 EDNS version > 0 → BADVERS (16) with OPT version 0, AA=0, no answer', async () => {
    const raw = (await udpRaw(s.port, Buffer.concat([header(134, 0, 1, 0, 0, 1), question(`web.service.${D}`), opt(1232, 1)])))!;
    const o = optOf(raw)!;
    assert.equal((o.extRcode << 4) | rcodeOf(raw), 16);
    assert.equal(o.version, 0);
    assert.equal(raw.readUInt16BE(6), 0, 'no answers');
    assert.equal(raw[2]! & 0x04, 0, 'AA=0');
  });

  it('§5.7 random garbage never crashes the server; every well-formed query still gets exactly one reply', async () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const base = buildQuery(`web.service.${D}`, 'A', { edns: 1232 });
    for (let i = 0; i < 1500; i++) {
      let m: Buffer;
      if (i % 2 === 0) {
        m = Buffer.from(base);
        const flips = 1 + Math.floor(rnd() * 4);
        for (let f = 0; f < flips; f++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
        m = m.subarray(0, Math.max(0, m.length - Math.floor(rnd() * 8)));
      } else {
        m = Buffer.from(Array.from({ length: Math.floor(rnd() * 80) }, () => Math.floor(rnd() * 256)));
      }
      await udpRaw(s.port, m, 5).catch(() => null);
    }
    // Over TCP too, in one connection followed by a good query.
    const replies = await tcpRaw(s.port, [Buffer.from([0xff, 0xff, 0x01]), buildQuery(`web.service.${D}`, 'A', { id: 999 })]);
    assert.ok(replies.some((r) => r.length >= 12 && r.readUInt16BE(0) === 999));
    for (let i = 0; i < 20; i++) await wellFormed();
  });
});

// test/helpers/dns-client: a small real DNS client over UDP and TCP for tests, decoding with dns-packet
// (an independent, well-kept codec, so our encoder is checked by code we did not write).

import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { HANG_DEADLINE_MS } from './deadline.ts';

/** dns-packet's decoded message, with the flag booleans and rcode it sets but does not type. */
/** A decoded record, loosely typed for assertions (dns-packet's union makes every field access a cast). */
export interface Rr {
  name: string;
  type: string;
  ttl: number;
  class?: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any;
  [k: string]: unknown;
}

export type Decoded = Omit<dnsPacket.Packet, 'answers' | 'authorities' | 'additionals'> & {
  answers?: Rr[];
  authorities?: Rr[];
  additionals?: Rr[];
  raw: Buffer;
  rcode: string;
  flag_qr: boolean;
  flag_aa: boolean;
  flag_tc: boolean;
  flag_rd: boolean;
  flag_ra: boolean;
  flag_ad: boolean;
  flag_cd: boolean;
};

export interface QueryOptions {
  tcp?: boolean;
  /** Add an OPT record with this UDP payload size. */
  edns?: number;
  /** EDNS version (default 0). */
  ednsVersion?: number;
  /** Set DO. */
  dnssecOk?: boolean;
  id?: number;
  rd?: boolean;
  class?: string;
  timeoutMs?: number;
  host?: string;
}

export function buildQuery(name: string, type: string, opts: QueryOptions = {}): Buffer {
  const packet: dnsPacket.Packet = {
    type: 'query',
    id: opts.id ?? Math.floor(Math.random() * 65536),
    flags: opts.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as dnsPacket.RecordType, class: (opts.class ?? 'IN') as dnsPacket.RecordClass }],
  };
  if (opts.edns !== undefined) {
    packet.additionals = [
      {
        type: 'OPT',
        name: '.',
        udpPayloadSize: opts.edns,
        extendedRcode: 0,
        ednsVersion: opts.ednsVersion ?? 0,
        flags: opts.dnssecOk ? dnsPacket.DNSSEC_OK : 0,
        options: [],
      } as unknown as dnsPacket.Answer,
    ];
  }
  const buf = dnsPacket.encode(packet);
  // dns-packet lowercases nothing, but it always writes names as given: keeps 0x20 case tests honest.
  return buf;
}

/**
 * Send raw bytes over UDP once and resolve with the first reply carrying their ID, or null when `timeoutMs` (the
 * hang bound) passes. Sent once, never resent, so tests that count responses in metrics stay exact; on loopback
 * with one query in flight a datagram is not lost, it is only late on a loaded machine, hence the long bound. To
 * show that a message gets no reply, use `udpDropped`, which waits for an event rather than for a time.
 */
export function udpRaw(port: number, msg: Buffer, timeoutMs = HANG_DEADLINE_MS, host = '127.0.0.1'): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const id = msg.length >= 2 ? msg.readUInt16BE(0) : -1;
    const finish = (m: Buffer | null, err?: Error) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(m);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    sock.on('message', (m) => {
      if (id < 0 || (m.length >= 2 && m.readUInt16BE(0) === id)) finish(m);
    });
    sock.on('error', (e) => finish(null, e));
    sock.send(msg, port, host);
  });
}

/**
 * Whether the server sent no reply to `msg`: sends it, then a valid `sentinel` query from the same socket, and
 * waits for the sentinel's reply. Datagrams from one socket are read and answered in order (one thread per
 * socket, SO_REUSEPORT keeps a source on one worker), so anything answering `msg` arrives first. Resolves with
 * the replies received before the sentinel's (empty: dropped).
 */
export async function udpDropped(port: number, msg: Buffer, sentinel: Buffer, timeoutMs = HANG_DEADLINE_MS, host = '127.0.0.1'): Promise<Buffer[]> {
  const id = sentinel.readUInt16BE(0);
  if (msg.length >= 2 && msg.readUInt16BE(0) === id) throw new Error("udpDropped: the sentinel needs an ID other than the message's");
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const before: Buffer[] = [];
    const finish = (err?: Error) => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(before);
    };
    const timer = setTimeout(() => finish(new Error(`no reply to the sentinel query within ${timeoutMs} ms`)), timeoutMs);
    sock.on('message', (m) => {
      if (m.length >= 2 && m.readUInt16BE(0) === id) finish();
      else before.push(m);
    });
    sock.on('error', (e) => finish(e));
    sock.send(msg, port, host, () => sock.send(sentinel, port, host));
  });
}

/** Send several length-framed messages on one TCP connection; resolve with the replies in arrival order. */
export function tcpRaw(port: number, msgs: Buffer[], timeoutMs = HANG_DEADLINE_MS, host = '127.0.0.1'): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const replies: Buffer[] = [];
    let pending = Buffer.alloc(0);
    const sock = net.connect(port, host);
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(replies);
    }, timeoutMs);
    sock.on('connect', () => {
      for (const m of msgs) {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(m.length);
        sock.write(Buffer.concat([len, m]));
      }
    });
    sock.on('data', (d) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 2) {
        const n = pending.readUInt16BE(0);
        if (pending.length < 2 + n) break;
        replies.push(pending.subarray(2, 2 + n));
        pending = pending.subarray(2 + n);
      }
      if (replies.length === msgs.length) {
        clearTimeout(timer);
        sock.end();
        resolve(replies);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(replies);
    });
  });
}

export function decode(raw: Buffer): Decoded {
  const p = dnsPacket.decode(raw) as unknown as Decoded;
  p.raw = raw;
  return p;
}

/** Query `name`/`type` against 127.0.0.1:port (UDP with resends, or TCP); rejects at the hang bound. */
export async function query(port: number, name: string, type: string, opts: QueryOptions = {}): Promise<Decoded> {
  const msg = buildQuery(name, type, opts);
  const host = opts.host ?? '127.0.0.1';
  if (opts.tcp) {
    const [r] = await tcpRaw(port, [msg], opts.timeoutMs ?? HANG_DEADLINE_MS, host);
    if (!r) throw new Error(`no TCP reply for ${name} ${type}`);
    return decode(r);
  }
  const r = await udpRaw(port, msg, opts.timeoutMs ?? HANG_DEADLINE_MS, host);
  if (!r) throw new Error(`no UDP reply for ${name} ${type} within ${opts.timeoutMs ?? HANG_DEADLINE_MS} ms`);
  return decode(r);
}

/** RCODE names as dns-packet reports them. */
export function rcode(p: Decoded): string {
  return (p as unknown as { rcode: string }).rcode;
}

/** Sorted data of answers of a type, for order-independent assertions. */
export function answerData(p: Decoded, type?: string): string[] {
  return (p.answers ?? [])
    .filter((a) => !type || a.type === type)
    .map((a) => {
      const d = a.data;
      if (a.type === 'SRV') {
        const s = d as { priority: number; weight: number; port: number; target: string };
        return `${s.priority} ${s.weight} ${s.port} ${s.target}`;
      }
      return String(d);
    })
    .sort();
}

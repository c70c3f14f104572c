// test/helpers/dns-client: a small real DNS client over UDP and TCP for tests, decoding with dns-packet
// (an independent, well-kept codec, so our encoder is checked by code we did not write).

import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';

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

/** Send raw bytes over UDP and resolve with the raw reply, or null on timeout. */
export function udpRaw(port: number, msg: Buffer, timeoutMs = 1000, host = '127.0.0.1'): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      sock.close();
      resolve(null);
    }, timeoutMs);
    sock.on('message', (m) => {
      clearTimeout(timer);
      sock.close();
      resolve(m);
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      sock.close();
      reject(e);
    });
    sock.send(msg, port, host);
  });
}

/** Send several length-framed messages on one TCP connection; resolve with the replies in arrival order. */
export function tcpRaw(port: number, msgs: Buffer[], timeoutMs = 2000, host = '127.0.0.1'): Promise<Buffer[]> {
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

/** Query `name`/`type` against 127.0.0.1:port; rejects on timeout. */
export async function query(port: number, name: string, type: string, opts: QueryOptions = {}): Promise<Decoded> {
  const msg = buildQuery(name, type, opts);
  const host = opts.host ?? '127.0.0.1';
  if (opts.tcp) {
    const [r] = await tcpRaw(port, [msg], opts.timeoutMs ?? 2000, host);
    if (!r) throw new Error(`no TCP reply for ${name} ${type}`);
    return decode(r);
  }
  const r = await udpRaw(port, msg, opts.timeoutMs ?? 1000, host);
  if (!r) throw new Error(`no UDP reply for ${name} ${type}`);
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

// bench/amplification: how much a spoofed UDP query can be amplified (issue 12 #4) — bytes out / bytes in for the
// largest answers svcdns gives, at the default maxUdpPayloadBytes (1232) and at 4096, over real UDP against the
// real app (file backend, one service with 100 dual-stack instances: every answer is as big as UDP lets it be).
// Also the cost of the guard per UDP query (address parse + ACL + rate-limit check), in ns. Reports, never
// asserts. Run: `npx node --disable-warning=ExperimentalWarning bench/amplification.ts`.

import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dnsPacket from 'dns-packet';
import { startApp } from '../src/app.ts';
import { validateConfig } from '../src/config/load.ts';
import { ClientAddress, Guard } from '../src/dns/guard.ts';
import { rateLimitSchema } from '../src/dns/rrl.ts';
import { aclSchema } from '../src/dns/acl.ts';
import { createLogger } from '../src/observability/logger.ts';
import { f, table } from './lib.ts';

const INSTANCES = 100;

function query(name: string, type: string, edns: number | null): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }],
    ...(edns === null ? {} : { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: edns, flags: 0, options: [] } as unknown as dnsPacket.Answer] }),
  });
}

function ask(port: number, msg: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      reject(new Error('no reply'));
    }, 10_000);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.send(msg, port, '127.0.0.1');
  });
}

export async function amplification(maxUdpPayloadBytes?: number): Promise<string[][]> {
  const dir = mkdtempSync(join(tmpdir(), 'svcdns-amp-'));
  const instances = Array.from({ length: INSTANCES }, (_, i) => [
    `      - { address: 10.20.${i >> 8}.${i & 255}, ports: { http: 8080 } }`,
    `      - { address: "fd00::20:${i.toString(16)}", ports: { http: 8080 } }`,
  ]).flat();
  writeFileSync(join(dir, 'services.yaml'), `services:\n  - name: big\n    instances:\n${instances.join('\n')}\n`);
  const config = validateConfig({ listen: '127.0.0.1:0', ...(maxUdpPayloadBytes ? { maxUdpPayloadBytes } : {}), backends: [{ type: 'file', path: 'services.yaml' }] }, 'bench');
  const app = await startApp({ config, configPath: join(dir, 'svcdns.yaml'), logger: createLogger('silent') });
  try {
    while (app.store.anyPending) await new Promise((r) => setTimeout(r, 10));
    const port = app.dnsAddresses[0]!.port;
    const rows: string[][] = [];
    for (const [name, type] of [
      ['big.service.sd.internal', 'A'],
      ['big.service.sd.internal', 'AAAA'],
      ['big.service.sd.internal', 'ANY'],
      ['_http._tcp.big.service.sd.internal', 'SRV'],
      ['sd.internal', 'ANY'],
      ['nope.service.sd.internal', 'A'],
    ] as const) {
      for (const edns of [null, 1232, 4096]) {
        const q = query(name, type, edns);
        const r = await ask(port, q);
        const tc = (r[2]! & 0x02) !== 0;
        rows.push([`${type} ${name}`, edns === null ? 'none' : String(edns), String(q.length), String(r.length), tc ? 'TC' : '', f(r.length / q.length, 1)]);
      }
    }
    return rows;
  } finally {
    await app.stop(100);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ns per UDP query the listener spends in the guard: parse rinfo.address, the ACL, a rate-limit check. */
export function guardCost(): { parseNs: number; aclNs: number; rrlNs: number; clockNs: number; allocBytesPerQuery: number } {
  const N = 2_000_000;
  const acl = aclSchema.parse([{ action: 'refuse', from: ['10.0.0.0/8', 'fd00::/8'] }, { action: 'drop', from: '192.0.2.0/24', types: ['ANY'] }]);
  const rateLimit = { ...rateLimitSchema.parse(undefined), enabled: true, responsesPerSecond: 1e6 };
  const g = new Guard({ acl, rateLimit }, null, () => performance.now());
  const msg = query('big.service.sd.internal', 'A', 1232);
  const out = Buffer.from(msg);
  out[2]! |= 0x80;
  out[7] = 1;
  const addrs = Array.from({ length: 256 }, (_, i) => `198.51.${i}.${(i * 7) & 255}`);
  const c = new ClientAddress();
  const time = (fn: (i: number) => void) => {
    for (let i = 0; i < 100_000; i++) fn(i); // warm up
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) fn(i);
    return Number(process.hrtime.bigint() - t0) / N;
  };
  const parseNs = time((i) => c.set(addrs[i & 255]!));
  const aclNs = time(() => g.admit(msg, msg.length, c));
  let sink = 0;
  const clockNs = time(() => (sink += performance.now()));
  const rrlNs = time((i) => {
    c.set(addrs[i & 255]!);
    g.limit(out, c);
  }) - parseNs;
  // Allocation: heap growth over N full guard passes, with GC kept out of the way as far as it goes.
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 200_000; i++) {
    c.set(addrs[i & 255]!);
    g.admit(msg, msg.length, c);
    g.limit(out, c);
  }
  const allocBytesPerQuery = Math.max(0, (process.memoryUsage().heapUsed - before) / 200_000);
  return { parseNs, aclNs, rrlNs, clockNs: sink === -1 ? 0 : clockNs, allocBytesPerQuery };
}

/** Print both tables and the guard cost (bench/run.ts calls this too: BENCH_ONLY=amplification). */
export async function amplificationPart(): Promise<void> {
  const head = ['question', 'EDNS size', 'bytes in', 'bytes out', '', 'out / in'];
  console.log('\n== UDP amplification (bench/amplification.ts) at the default maxUdpPayloadBytes (1232), 100 dual-stack instances:');
  console.log(table(head, await amplification()));
  console.log('\n... and at maxUdpPayloadBytes: 4096:');
  console.log(table(head, await amplification(4096)));
  const g = guardCost();
  console.log(
    `\nguard per UDP query: address parse ${f(g.parseNs, 0)} ns, ACL (2 rules, 3 prefixes) ${f(g.aclNs, 0)} ns, ` +
      `rate-limit check ${f(g.rrlNs, 0)} ns (one performance.now() of it: ${f(g.clockNs, 0)} ns on this machine now); ` +
      `heap growth ${f(g.allocBytesPerQuery, 2)} B/query`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) await amplificationPart();

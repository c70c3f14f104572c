// bench/miss-cost: what an answer-cache miss costs next to a hit, in-process (no sockets: the processor alone),
// over a store of 10k services × 10 instances (issue 11 item 6). Also the real heap cost of a cache entry next to
// what the cache accounts for it. Run: npx node --expose-gc --disable-warning=ExperimentalWarning bench/miss-cost.ts

import * as dnsPacket from 'dns-packet';
import { Answerer } from '../src/answer/answer.ts';
import { QueryProcessor } from '../src/dns/processor.ts';
import type { Instance, Service } from '../src/model/service.ts';
import { serviceKey } from '../src/model/service.ts';
import { Store } from '../src/store/store.ts';

const SERVICES = Number(process.env.MISS_SERVICES ?? 10_000);
const INSTANCES = 10;
const ROUNDS = Number(process.env.MISS_ROUNDS ?? 3);

function buildStore(): Store {
  const store = new Store();
  const services = new Map<string, Service>();
  for (let s = 0; s < SERVICES; s++) {
    const instances: Instance[] = [];
    for (let i = 0; i < INSTANCES; i++) {
      instances.push({ address: `10.${(s >> 8) & 255}.${s & 255}.${i + 1}`, family: 4, ports: [{ name: 'http', port: 8080, protocol: 'tcp' }], weight: 1, tags: [] });
    }
    const svc: Service = { name: `svc-${s}`, scope: 'default', instances };
    services.set(serviceKey(svc.scope, svc.name), svc);
  }
  store.register('bench', 'file', () => true);
  store.apply('bench', { services, defaultScope: 'default' });
  return store;
}

function processor(store: Store, cacheBytes?: number): QueryProcessor {
  const answer = { domains: ['sd.internal'], ttlSeconds: 5, negativeTtlSeconds: 5, order: 'random' as const, maxAnswers: 0, emptyService: 'nodata' as const };
  return new QueryProcessor({ responder: new Answerer(store, answer), maxUdpPayloadBytes: 1232, order: 'random', ...(cacheBytes !== undefined ? { cacheBytes } : {}) });
}

function query(name: string, type: string, o: { cls?: string; edns?: number; dnssecOk?: boolean } = {}): Buffer {
  const p: dnsPacket.Packet = { type: 'query', id: 1, flags: 0, questions: [{ name, type: type as dnsPacket.RecordType, class: (o.cls ?? 'IN') as dnsPacket.RecordClass }] };
  if (o.edns !== undefined) {
    p.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: o.edns, extendedRcode: 0, ednsVersion: 0, flags: o.dnssecOk ? dnsPacket.DNSSEC_OK : 0, options: [] } as unknown as dnsPacket.Answer];
  }
  return dnsPacket.encode(p);
}

/** CPU time (µs) this process used: less disturbed than the wall clock when other processes share the cores. */
function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** CPU ns per query over `msgs`, each asked once per round; the best of ROUNDS (least disturbed by others' load). */
function nsPer(p: () => QueryProcessor, msgs: readonly Buffer[], reuse: boolean): number {
  let best = Infinity;
  let proc = p();
  for (let r = 0; r < ROUNDS; r++) {
    if (!reuse) proc = p();
    const t0 = cpuNs();
    for (const m of msgs) proc.process(m, m.length, false);
    const ns = (cpuNs() - t0) / msgs.length;
    if (ns < best) best = ns;
  }
  return best;
}

const gc = (globalThis as { gc?: () => void }).gc;
async function heapUsed(): Promise<number> {
  // Freed Buffer memory is released by a background sweeper after the GC: give it time, then collect again.
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers; // Buffers live outside the JS heap
}

const store = buildStore();
const names = Array.from({ length: SERVICES }, (_, s) => `svc-${s}.service.sd.internal`);
const rows: [string, number][] = [];

// Hits: one query asked again and again (warmed first).
for (const [label, name, type] of [
  ['hit A (10 records)', names[0]!, 'A'],
  ['hit SRV (10 records + glue)', `_http._tcp.${names[0]!}`, 'SRV'],
  ['hit NXDOMAIN', 'nope.service.sd.internal', 'A'],
] as const) {
  const m = query(name, type, { edns: 1232 });
  const msgs = Array.from({ length: 20_000 }, () => m);
  rows.push([label, nsPer(() => processor(store), msgs, true)]);
}

// Misses: each query's name asked for the first time (a fresh processor per round).
const few = names.slice(0, Math.min(SERVICES, 5000));
rows.push(['miss A (10 records), distinct names', nsPer(() => processor(store), few.map((n) => query(n, 'A', { edns: 1232 })), false)]);
rows.push(['miss SRV (10 records + glue), distinct names', nsPer(() => processor(store), few.map((n) => query(`_http._tcp.${n}`, 'SRV', { edns: 1232 })), false)]);
rows.push(['miss AAAA (NODATA), distinct names', nsPer(() => processor(store), few.map((n) => query(n, 'AAAA', { edns: 1232 })), false)]);
rows.push(['miss random labels (NXDOMAIN)', nsPer(() => processor(store), few.map((_, i) => query(`r${(i * 2654435761) >>> 0}x.service.sd.internal`, 'A')), false)]);

// 30 variants of one name (type, class, EDNS size, DO), cycled: with 16 slots kept per name, each one a miss.
const variants: Buffer[] = [];
for (const type of ['A', 'AAAA', 'SRV', 'ANY', 'TXT']) {
  for (const [cls, edns, dnssecOk] of [['IN', undefined, false], ['IN', 512, false], ['IN', 1232, false], ['IN', 4096, true], ['ANY', 1232, false], ['IN', 1232, true]] as const) {
    variants.push(query(names[1]!, type, { cls, ...(edns !== undefined ? { edns } : {}), dnssecOk }));
  }
}
const cycled: Buffer[] = [];
for (let i = 0; i < 100; i++) cycled.push(...variants);
rows.push([`${variants.length} variants of one name, cycled`, nsPer(() => processor(store), cycled, true)]);

for (const [label, ns] of rows) console.log(`${label.padEnd(48)} ${ns.toFixed(0).padStart(8)} ns/query`);

// Heap per cache entry: fill a processor with N distinct names and compare with what it accounts. As a server holds
// them: every name asked twice, each query among many hits on another name, so the responses hits allocate share
// memory with what the cache keeps (issue 11 #4: cached Buffers in the shared pool pinned its 8 KB slabs).
// Each fill and measure runs in a function of its own: a processor left in this module's suspended frame
// would be freed in the middle of the next measure.
const hot = query(names[SERVICES - 1]!, 'A', { edns: 1232 });
function fill(msgs: readonly Buffer[]): QueryProcessor {
  const p = processor(store);
  for (let pass = 0; pass < 2; pass++) {
    for (const m of msgs) {
      p.process(m, m.length, false);
      for (let k = 0; k < 20; k++) p.process(hot, hot.length, false);
    }
  }
  return p;
}
async function entryCost(msgs: readonly Buffer[]): Promise<{ real: number; accounted: number; names: number; wire: number }> {
  fill(msgs); // the store's own lazily built state (merged services) is not the cache's
  const before = await heapUsed();
  const p = fill(msgs);
  const real = ((await heapUsed()) - before - hot.length) / p.cachedNames;
  let wire = 0;
  const probe = processor(store);
  for (const m of msgs.slice(0, 100)) wire += probe.process(m, m.length, false)!.length;
  wire /= Math.min(100, msgs.length) / (msgs.length / p.cachedNames);
  return { real, accounted: p.cachedBytes / p.cachedNames, names: p.cachedNames, wire };
}
for (const [label, make] of [
  ['A (10 records)', (n: string) => [query(n, 'A', { edns: 1232 })]],
  ['A (10 records), no EDNS', (n: string) => [query(n, 'A')]],
  ['SRV (10 records + glue)', (n: string) => [query(`_http._tcp.${n}`, 'SRV', { edns: 1232 })]],
  ['NXDOMAIN', (n: string) => [query(`x${n}`, 'A', { edns: 1232 })]],
  ['AAAA (NODATA)', (n: string) => [query(n, 'AAAA', { edns: 1232 })]],
  ['A + AAAA + SRV (3 slots)', (n: string) => [query(n, 'A', { edns: 1232 }), query(n, 'AAAA', { edns: 1232 }), query(n, 'SRV', { edns: 1232 })]],
  ['A at 1232, 512 and TCP size (3 slots)', (n: string) => [query(n, 'A', { edns: 1232 }), query(n, 'A', { edns: 512 }), query(n, 'A')]],
] as const) {
  const c = await entryCost(few.flatMap(make));
  console.log(
    `cache entry ${label.padEnd(38)} heap ${c.real.toFixed(0).padStart(6)} B, accounted ${c.accounted.toFixed(0).padStart(6)} B ` +
      `(${(100 * (c.accounted / c.real - 1)).toFixed(1).padStart(5)} %), answers ${c.wire.toFixed(0)} B on the wire (${c.names} names)`,
  );
}
if (gc === undefined) console.log('(run with --expose-gc for exact heap figures)');

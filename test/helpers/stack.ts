// test/helpers/stack: the real DNS stack (store → answerer → processor → UDP/TCP listeners on 127.0.0.1:0)
// with data put straight into the store, so tests can drive exact states (not synced, stale, merged).

import { Answerer, type AnswerOptions } from '../../src/answer/answer.ts';
import { QueryProcessor, type DnsMetrics } from '../../src/dns/processor.ts';
import { DnsServer } from '../../src/dns/server.ts';
import type { Order } from '../../src/dns/plan.ts';
import { serviceKey, type Instance, type Port, type Service } from '../../src/model/service.ts';
import { canonicalAddress } from '../../src/model/names.ts';
import { Store } from '../../src/store/store.ts';

export interface StackOptions {
  answer?: Partial<AnswerOptions>;
  maxUdpPayloadBytes?: number;
  tcpIdleTimeoutMs?: number;
  tcpMaxConnections?: number;
  tcpMessageDeadlineMs?: number;
  metrics?: DnsMetrics;
}

export interface Stack {
  readonly port: number;
  readonly store: Store;
  readonly server: DnsServer;
  readonly processor: QueryProcessor;
  stop(): Promise<void>;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const store = new Store();
  const order: Order = opts.answer?.order ?? 'random';
  const answerer = new Answerer(store, {
    domains: ['sd.internal'],
    ttlSeconds: 5,
    negativeTtlSeconds: 5,
    order,
    maxAnswers: 0,
    emptyService: 'nodata',
    ...opts.answer,
  });
  const processor = new QueryProcessor({
    responder: answerer,
    maxUdpPayloadBytes: opts.maxUdpPayloadBytes ?? 1232,
    order,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  const server = new DnsServer({
    listen: [{ host: '127.0.0.1', port: 0 }],
    processor,
    tcpIdleTimeoutMs: opts.tcpIdleTimeoutMs ?? 5000,
    tcpMaxConnections: opts.tcpMaxConnections ?? 100,
    ...(opts.tcpMessageDeadlineMs !== undefined ? { tcpMessageDeadlineMs: opts.tcpMessageDeadlineMs } : {}),
  });
  await server.start();
  return { port: server.addresses[0]!.port, store, server, processor, stop: () => server.close(200) };
}

/** Instance shorthand: inst('10.0.0.1', [80], {tags, weight}) or ports as `name:port/proto` strings. */
export function inst(address: string, ports: (number | string)[] = [], o: { tags?: string[]; weight?: number } = {}): Instance {
  const c = canonicalAddress(address);
  if (!c) throw new Error(`bad address ${address}`);
  const ps: Port[] = ports.map((p) => {
    if (typeof p === 'number') return { name: null, port: p, protocol: 'tcp' };
    const m = /^(?:([a-z0-9_-]+):)?(\d+)(?:\/(tcp|udp))?$/.exec(p);
    if (!m) throw new Error(`bad port ${p}`);
    return { name: m[1] ?? null, port: Number(m[2]), protocol: (m[3] as 'tcp' | 'udp' | undefined) ?? 'tcp' };
  });
  return { address: c.address, family: c.family, ports: ps, weight: o.weight ?? 1, tags: o.tags ?? [] };
}

export function svc(name: string, instances: Instance[], o: { scope?: string; ttlSeconds?: number } = {}): Service {
  return { name, scope: o.scope ?? 'default', instances, ...(o.ttlSeconds !== undefined ? { ttlSeconds: o.ttlSeconds } : {}) };
}

/** Register (if needed) and apply a full snapshot for `backend`. */
export function put(store: Store, backend: string, services: Service[], defaultScope: string | null = 'default'): void {
  if (!store.status().some((s) => s.name === backend)) store.register(backend, 'test', () => true);
  store.apply(backend, { services: new Map(services.map((s) => [serviceKey(s.scope, s.name), s])), defaultScope });
}

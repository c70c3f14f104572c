// config/schema: the strict schema of svcdns.yaml, assembled from the core keys and each backend's own schema.

import { isIP } from 'node:net';
import { z } from 'zod';
import { backendModules, type AnyBackendConfig } from '../backends/registry.ts';
import { aclSchema } from '../dns/acl.ts';
import { rateLimitSchema } from '../dns/rrl.ts';
import { parseReverse } from '../model/names.ts';

export const DEFAULT_LISTEN = '127.0.0.1:8653';
export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:8654';

/** `host:port` or `[v6]:port`; host must be an IP literal (we bind, we do not resolve). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export function parseListen(s: string): ListenAddress | string {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]]+):(\d+)$/.exec(s);
  if (!m) return 'must be "host:port" or "[ipv6]:port"';
  const host = m[1]!;
  const port = Number(m[2]);
  if (!isIP(host)) return `host "${host}" must be an IP address`;
  if (!Number.isInteger(port) || port < 0 || port > 65535) return 'port must be 0..65535';
  return { host, port };
}

const listenAddress = z.string().transform((s, ctx) => {
  const r = parseListen(s);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

/** A domain: one or more labels, stored lowercase without the trailing dot. */
const domain = z.string().transform((s, ctx) => {
  const d = s.toLowerCase().replace(/\.$/, '');
  const labels = d.split('.');
  if (d === '' || !labels.every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l)) || d.length > 253) {
    ctx.addIssue({ code: 'custom', message: 'must be a DNS domain name such as "sd.internal"' });
    return z.NEVER;
  }
  return d;
});

/**
 * A reverse zone (§3.8): `in-addr.arpa` or `ip6.arpa`, or a name below them on whole octets / nibbles
 * (`10.in-addr.arpa`, `168.192.in-addr.arpa`, `0.0.d.f.ip6.arpa`). RFC 2317 classless zones are not supported.
 */
const reverseZone = z.string().transform((s, ctx) => {
  const d = s.toLowerCase().replace(/\.$/, '');
  const r = parseReverse(d);
  if (!r.valid || r.full !== null) {
    ctx.addIssue({ code: 'custom', message: 'must be a reverse zone on octet or nibble boundaries, such as "10.in-addr.arpa" or "d.f.ip6.arpa"' });
    return z.NEVER;
  }
  return d;
});

const oneOrMany = (v: unknown) => (typeof v === 'string' ? [v] : v);

const ipOf = (fam: 4 | 6) =>
  z.string().refine((s) => isIP(s) === fam, { message: `must be an IPv${fam} address` });

// One strict schema per backend type, chosen by `type` (hickory-dns style: the store is picked by a type field).
const backendEntry = z.discriminatedUnion(
  'type',
  Object.values(backendModules).map((m) => m.configSchema) as unknown as Parameters<typeof z.discriminatedUnion>[1],
) as unknown as z.ZodType<AnyBackendConfig>;

export const configSchema = z
  .strictObject({
    // A single string is shorthand for a one-element list.
    listen: z.preprocess(oneOrMany, z.array(listenAddress).min(1)).default([{ host: '127.0.0.1', port: 8653 }]),
    domains: z.preprocess(oneOrMany, z.array(domain).min(1)).default(['sd.internal']),
    ttlSeconds: z.number().int().min(0).max(2_147_483_647).default(5),
    negativeTtlSeconds: z.number().int().min(0).max(2_147_483_647).default(5),
    maxUdpPayloadBytes: z.number().int().min(512).max(65_535).default(1232),
    order: z.enum(['random', 'round-robin', 'fixed']).default('random'),
    maxAnswers: z.number().int().min(0).max(65_535).default(0),
    emptyService: z.enum(['nodata', 'nxdomain']).default('nodata'),
    /** SRV targets (§3.2): the `.addr` name, or the instance's own name (§2.6) where it has one. */
    srvTarget: z.enum(['addr', 'instance']).default('addr'),
    /** Reverse zones answered with PTR for instance addresses (§3.8); others stay REFUSED (§1.2). */
    reverseZones: z.preprocess(oneOrMany, z.array(reverseZone)).default([]),
    nameserver: z
      .strictObject({
        /** NS target; default `ns.<domain>` for each domain. */
        name: domain.optional(),
        ipv4: z.array(ipOf(4)).default([]),
        ipv6: z.array(ipOf(6)).default([]),
      })
      .default({ ipv4: [], ipv6: [] }),
    tcp: z
      .strictObject({
        idleTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
        maxConnections: z.number().int().min(1).max(1_000_000).default(1000),
        /** Open connections one source address may hold (per thread answering DNS); 0 = only maxConnections. */
        maxConnectionsPerSource: z.number().int().min(0).max(1_000_000).default(100),
      })
      .default({ idleTimeoutMs: 10_000, maxConnections: 1000, maxConnectionsPerSource: 100 }),
    udp: z
      .strictObject({
        /**
         * SO_RCVBUF for each UDP socket: room for a burst of queries while the thread is busy (the kernel default,
         * ~208 KB, drops them). The kernel caps it at net.core.rmem_max; what it granted is logged at start.
         * 0 keeps the kernel default.
         */
        receiveBufferBytes: z.number().int().min(0).max(1_073_741_824).default(8_388_608),
      })
      .default({ receiveBufferBytes: 8_388_608 }),
    cache: z
      .strictObject({
        /**
         * Bytes the encoded-answer cache may hold, all threads together (with `workers: N` each thread gets 1/N):
         * encoded answers plus their measured bookkeeping, so it is what the cache costs in RSS (issue 11 item 4).
         * ~1 KB a cached name (A or AAAA with 10 records), ~1.8 KB an SRV name with 10 records and glue.
         */
        maxBytes: z.number().int().min(1_048_576).max(4_294_967_296).default(33_554_432),
      })
      .default({ maxBytes: 33_554_432 }),
    /** Client ACL: ordered rules, the first match decides, default allow (dns/acl.ts). */
    acl: aclSchema,
    /** UDP response rate limiting per client netblock and response class (dns/rrl.ts). Off by default. */
    rateLimit: rateLimitSchema,
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .default({ level: 'info' }),
    backends: z.array(backendEntry).min(1),
    /** Admin HTTP server: /metrics /healthz /readyz /v1/services (observability/admin.ts). */
    admin: z
      .strictObject({
        enabled: z.boolean().default(true),
        listen: listenAddress.default({ host: '127.0.0.1', port: 8654 }),
      })
      .default({ enabled: true, listen: { host: '127.0.0.1', port: 8654 } }),
    /**
     * DNS worker threads: 1 answers on the main thread; N > 1 (or "auto": one per CPU) runs N threads on the
     * same address with SO_REUSEPORT, fed from the main thread's store (workers/pool.ts).
     */
    workers: z.union([z.literal('auto'), z.number().int().min(1).max(64)]).default(1),
    /**
     * SIGTERM/SIGINT: for `lameDuckMs`, /readyz answers 503 while DNS keeps answering over UDP and TCP (load
     * balancers and kube-proxy move away first), then the listeners drain and the process exits 0.
     */
    shutdown: z
      .strictObject({
        lameDuckMs: z.number().int().min(0).max(600_000).default(0),
      })
      .default({ lameDuckMs: 0 }),
    /**
     * A reload that changes or adds a backend starts the new instance beside the running one and switches over
     * once it has synced; if its first sync fails, or takes longer than `firstSyncTimeoutMs`, the reload fails
     * and the running backends keep answering.
     */
    reload: z
      .strictObject({
        firstSyncTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
      })
      .default({ firstSyncTimeoutMs: 60_000 }),
    /** Reload when the config file changes (as on SIGHUP). */
    watchConfig: z.boolean().default(false),
    /** Sampled per-query log to its own destination, for debugging a client (observability/query-log.ts). */
    queryLog: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** Fraction of queries logged, 0..1. */
        sampleRate: z.number().min(0).max(1).default(0.01),
        /** File to append JSON lines to (relative to the config file); absent or "stdout": standard output. */
        path: z.string().min(1).optional(),
      })
      .default({ enabled: false, sampleRate: 0.01 }),
  })
  .superRefine((cfg, ctx) => {
    const names = new Set<string>();
    cfg.backends.forEach((b, i) => {
      const name = b.name ?? b.type;
      if (names.has(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['backends', i, 'name'],
          message: `duplicate backend name "${name}" (give each backend a distinct "name")`,
        });
      }
      names.add(name);
    });
  });

export type Config = z.output<typeof configSchema>;
export type BackendConfig = Config['backends'][number];

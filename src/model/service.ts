// model/service: the data every layer shares — a healthy instance, a service, a backend snapshot. Imports nothing.

/** Transport protocol of a port, as used by SRV `_proto` labels (dns-behaviour.md §2.3b). */
export type Protocol = 'tcp' | 'udp';

/** One port of an instance. `name` is a lowercase DNS label (a Kubernetes port name, a static-file named port) or null. */
export interface Port {
  readonly name: string | null;
  readonly port: number;
  readonly protocol: Protocol;
}

/**
 * One healthy instance (backends only ever serve healthy ones, §6.1; unhealthy ones are Service.unhealthy).
 * Invariants: `address` is canonical text (dotted IPv4, or RFC 5952 IPv6 — lowercase, `::` compressed);
 * `weight` is an integer 1..65535; `tags` are lowercase DNS labels.
 */
export interface Instance {
  readonly address: string;
  readonly family: 4 | 6;
  readonly ports: readonly Port[];
  readonly weight: number;
  readonly tags: readonly string[];
  /**
   * The instance's own name (§2.6): `<name>.N.service[.S].D` answers this instance alone, and its PTR (§3.8)
   * points there. A lowercase host-name label (instanceLabel() accepted it), or undefined: the backend gave none
   * or gave one that is not a host name. Kubernetes: the endpoint's `hostname`, else its Pod's name; Consul: the
   * service ID; static file: `id`.
   */
  readonly name?: string | undefined;
}

/** A service in one scope (Consul datacenter, Kubernetes namespace, static-file scope). Labels are lowercase. */
export interface Service {
  readonly name: string;
  readonly scope: string;
  /** Per-service TTL override (§3.4); undefined means the configured default. */
  readonly ttlSeconds?: number | undefined;
  /** Healthy instances only; may be empty (a known service with nothing healthy, §5.3). */
  readonly instances: readonly Instance[];
  /**
   * Every tag and port name of every registered instance, healthy or not (lowercase labels). §2.2: a tag or port
   * name outside this set names nothing (NXDOMAIN); one in it that no healthy instance carries is NODATA (§5.3).
   * Undefined: the backend reports no more than its healthy instances, whose tags and port names are then the set.
   */
  readonly knownTags?: readonly string[] | undefined;
  /**
   * Registered instances that DNS does not serve, and why (the status page and /v1/services only; no answer reads
   * it, §6.1). Absent or empty: none, or the backend does not report them. `reason` is a stable string (a
   * constant or an interned one, never a check's output) so an unchanged registry yields an unchanged Service.
   */
  readonly unhealthy?: readonly UnhealthyInstance[] | undefined;
}

/** A registered instance that is not served (Service.unhealthy). Only unhealthy instances get one. */
export interface UnhealthyInstance {
  /** The instance's address as registered (canonical when it is an IP, else the registry's text). */
  readonly address: string;
  /**
   * What names the instance, for the page (display only, never a DNS name): Kubernetes the endpoint's hostname or
   * Pod, the static file's `id` (§2.6); Consul the service ID as registered, host-name label or not.
   */
  readonly name?: string | undefined;
  /** Why it is not served: `not ready`, `check web-health critical`, `healthy: false`... Stable per state. */
  readonly reason: string;
}

/** Whether two unhealthy lists say the same (same order: each backend emits them sorted). */
export function sameUnhealthy(a: readonly UnhealthyInstance[] | undefined, b: readonly UnhealthyInstance[] | undefined): boolean {
  if (a === b) return true;
  const x = a ?? NO_UNHEALTHY;
  const y = b ?? NO_UNHEALTHY;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    const p = x[i]!;
    const q = y[i]!;
    if (p !== q && (p.address !== q.address || p.name !== q.name || p.reason !== q.reason)) return false;
  }
  return true;
}

const NO_UNHEALTHY: readonly UnhealthyInstance[] = Object.freeze([]);

/** Unhealthy entries sorted by address, then name, then reason: the order every backend emits. */
export function sortUnhealthy(list: UnhealthyInstance[]): UnhealthyInstance[] {
  return list.sort((p, q) => cmp(p.address, q.address) || cmp(p.name ?? '', q.name ?? '') || cmp(p.reason, q.reason));
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The tags and port names a service is known to carry (§2.2): `knownTags` plus those of its healthy instances. */
export function tagsOf(svc: Service, into: Set<string>): Set<string> {
  if (svc.knownTags) for (const t of svc.knownTags) into.add(t);
  for (const i of svc.instances) {
    for (const t of i.tags) into.add(t);
    for (const p of i.ports) if (p.name !== null) into.add(p.name);
  }
  return into;
}

/** The key of a service inside a snapshot map: `${scope}/${name}`. */
export function serviceKey(scope: string, name: string): string {
  return `${scope}/${name}`;
}

/**
 * The whole state of one backend at one moment (architecture rule 1: full snapshots, never deltas).
 * Immutable. A backend that re-emits an unchanged service should reuse the same `Service` object: the store
 * skips services whose object identity did not change, so a one-service change costs O(1) to merge.
 */
export interface ServiceSnapshot {
  /** Keyed by serviceKey(scope, name). */
  readonly services: ReadonlyMap<string, Service>;
  /**
   * Scope whose services also answer unscoped names (`N.service.D`, §2.1): the Consul agent's datacenter,
   * the Kubernetes `defaultScope` namespace, the static file's default scope. Null: this backend answers only
   * scoped names.
   */
  readonly defaultScope: string | null;
  /**
   * Optional hint: the keys that may differ from the previous snapshot this backend emitted. When present the
   * store looks only at these keys (O(changes) instead of O(services)); every other key must hold the very
   * same Service object as before. Absent: the store diffs the whole map by identity.
   */
  readonly changed?: ReadonlySet<string> | undefined;
}

/**
 * Which names a backend could own before its first sync (§5.4), as data — the same answer as its
 * `ownsScope`, in a form that can be sent to worker threads. `any`: every scope; else `scopes` lists them.
 */
export interface ScopeClaim {
  readonly unscoped: boolean;
  readonly any: boolean;
  readonly scopes: readonly string[];
}

/** Whether a claim covers `scope` (null: the unscoped names). */
export function claimOwns(claim: ScopeClaim, scope: string | null): boolean {
  return scope === null ? claim.unscoped : claim.any || claim.scopes.includes(scope);
}

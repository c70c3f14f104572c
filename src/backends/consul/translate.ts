// backends/consul/translate: a `/v1/health/service/<name>` reply → the healthy Instances of one Service
// (§6.1 health, weights, §2.2 tags; addresses: Service.Address else Node.Address, plus lan_ipv4/lan_ipv6
// tagged addresses). Pure: no I/O; warnings go through a callback so the caller can log each one once.

import type { Instance, Port, Service, UnhealthyInstance } from '../../model/service.ts';
import { sameUnhealthy, sortUnhealthy } from '../../model/service.ts';
import { canonicalAddress, instanceLabel, isLabel } from '../../model/names.ts';

export interface TranslateOptions {
  readonly name: string;
  readonly scope: string;
  readonly onlyPassing: boolean;
  readonly ttlSeconds?: number | undefined;
  /** Called for each unusable piece of data; `key` identifies it so the caller can warn once per key. */
  readonly warn: (key: string, message: string, details: Record<string, unknown>) => void;
}

export interface Translated {
  readonly instances: Instance[];
  /** Tags of every instance in the reply, healthy or not (§2.2: other tags answer NXDOMAIN). Sorted. */
  readonly knownTags: string[];
  /** Nodes that carry an instance of this service, healthy or not. */
  readonly nodes: string[];
  /** Entries that were not objects of the recorded shape (skipped). */
  readonly malformed: number;
  /** Registered instances not served, and why (Service.unhealthy), sorted; undefined when there are none. */
  readonly unhealthy: readonly UnhealthyInstance[] | undefined;
}

// Equal port and tag lists are shared between instances and services (issue 11 #4: at 10k × 10 most instances
// carry the same one-port list and the same tags). The lists are never mutated once built.
const NO_PORTS: readonly Port[] = [];
const portLists = new Map<number, readonly Port[]>(); // at most 65,535 entries
const tagLists = new Map<string, readonly string[]>();
const MAX_TAG_LISTS = 50_000;

function portsOf(port: number): readonly Port[] {
  if (port <= 0) return NO_PORTS;
  let p = portLists.get(port);
  if (p === undefined) portLists.set(port, (p = [{ name: null, port, protocol: 'tcp' }]));
  return p;
}

/** The shared list equal to `tags` (sorted, distinct). */
function shareTags(tags: readonly string[]): readonly string[] {
  const key = tags.join(',');
  let t = tagLists.get(key);
  if (t === undefined) {
    if (tagLists.size >= MAX_TAG_LISTS) tagLists.clear(); // churn of unusual tag sets cannot grow it without bound
    tagLists.set(key, (t = tags));
  }
  return t;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Weight from Consul's `Weights` (default 1/1); §3.2: an SRV weight is 1..65535, never 0. */
function weightOf(weights: unknown, warning: boolean): number {
  const w = isObj(weights) ? (warning ? weights['Warning'] : weights['Passing']) : undefined;
  const n = typeof w === 'number' && Number.isFinite(w) ? Math.trunc(w) : 1;
  return Math.min(65_535, Math.max(1, n));
}

// Why an entry is not served (Service.unhealthy). Stable: built from the check's ID and status only, never its
// Output (which changes on every run), and interned, so one state is one string object from poll to poll and an
// unchanged reply keeps its Service object (sameServed). Bounded like tagLists: churn cannot grow it for ever.
const reasons = new Map<string, string>();
const MAX_REASONS = 50_000;
const REASON_BAD_ADDRESS = 'address is not an IP';
/** Consul's maintenance mode: a critical check with these reserved IDs (`consul maint`). */
const REASON_NODE_MAINTENANCE = 'node maintenance';
const REASON_SERVICE_MAINTENANCE = 'maintenance';

function intern(text: string): string {
  let r = reasons.get(text);
  if (r === undefined) {
    if (reasons.size >= MAX_REASONS) reasons.clear();
    reasons.set(text, (r = text));
  }
  return r;
}

/** Why a failing check keeps its instance out: `check web-1-http critical`, `node check serfHealth critical`. */
function checkReason(checkId: string, nodeLevel: boolean, status: string, onlyPassing: boolean): string {
  if (checkId === '_node_maintenance') return REASON_NODE_MAINTENANCE;
  if (checkId.startsWith('_service_maintenance:')) return REASON_SERVICE_MAINTENANCE;
  return intern(`${nodeLevel ? 'node check' : 'check'} ${checkId} ${status === '' ? '(no status)' : status}${onlyPassing && status === 'warning' ? ' (onlyPassing)' : ''}`);
}

const PASSING = { warning: false } as const;
const WARNING = { warning: true } as const;

/** Health of one entry: a string = not served, and why; otherwise whether any check is `warning`. */
function healthOf(checks: unknown, serviceId: string, onlyPassing: boolean): { readonly warning: boolean } | string {
  let warning = false;
  if (!Array.isArray(checks)) return PASSING;
  for (const c of checks) {
    if (!isObj(c)) continue;
    // Node-level checks (serfHealth, ServiceID "") and this instance's own checks count; Consul returns only those.
    const sid = str(c['ServiceID']);
    if (sid !== '' && sid !== serviceId) continue;
    const status = str(c['Status']);
    if (status === 'passing') continue;
    if (status === 'warning') {
      if (onlyPassing) return checkReason(str(c['CheckID']), sid === '', status, true);
      warning = true;
      continue;
    }
    return checkReason(str(c['CheckID']), sid === '', status, false); // critical, maintenance, or anything unknown: not served (fail closed)
  }
  return warning ? WARNING : PASSING;
}

/** Tagged address text: node-level values are strings, service-level ones `{address, port}` objects. */
function tagged(map: unknown, key: string): { address: string; port: number | null } | null {
  if (!isObj(map)) return null;
  const v = map[key];
  if (typeof v === 'string' && v !== '') return { address: v, port: null };
  if (isObj(v) && typeof v['address'] === 'string' && v['address'] !== '') {
    const p = v['port'];
    return { address: v['address'], port: typeof p === 'number' && p > 0 && p < 65_536 ? p : null };
  }
  return null;
}

/**
 * What translateHealth reads of a node (`Address`, `lan_ipv4`, `lan_ipv6`), as one comparable string, or null for
 * an entry that is not a node object: the node-list watch re-reads a node's services when it changes (consul.ts).
 */
export function nodeAddressKey(node: unknown): string | null {
  if (!isObj(node) || typeof node['Node'] !== 'string') return null;
  const v4 = tagged(node['TaggedAddresses'], 'lan_ipv4');
  const v6 = tagged(node['TaggedAddresses'], 'lan_ipv6');
  return `${str(node['Address'])}\u0000${v4?.address ?? ''}\u0000${v6?.address ?? ''}`;
}

export function translateHealth(body: unknown, opts: TranslateOptions): Translated {
  const entries = Array.isArray(body) ? body : [];
  const byKey = new Map<string, Instance>();
  const nodes = new Set<string>();
  const known = new Set<string>();
  let unhealthy: UnhealthyInstance[] | undefined;
  let malformed = 0;
  for (const e of entries) {
    if (!isObj(e) || !isObj(e['Node']) || !isObj(e['Service'])) {
      malformed++;
      continue;
    }
    const node = e['Node'];
    const svc = e['Service'];
    const nodeName = str(node['Node']);
    const serviceId = str(svc['ID']);
    nodes.add(nodeName);

    const ownTags: string[] = [];
    for (const t of Array.isArray(svc['Tags']) ? svc['Tags'] : []) {
      // Tags: null in real replies; tags that are not DNS labels (`v1.2`, `a=b`) cannot be queried, so skip them.
      if (typeof t !== 'string') continue;
      const l = t.toLowerCase();
      if (isLabel(l) && !ownTags.includes(l)) ownTags.push(l);
    }
    ownTags.sort();
    const tags = shareTags(ownTags);
    for (const t of tags) known.add(t);
    const health = healthOf(e['Checks'], serviceId, opts.onlyPassing);
    const svcAddr = str(svc['Address']);
    if (typeof health === 'string') {
      (unhealthy ??= []).push(unhealthyEntry(svcAddr !== '' ? svcAddr : str(node['Address']), serviceId, health));
      continue;
    }
    const svcPort = typeof svc['Port'] === 'number' && svc['Port'] > 0 && svc['Port'] < 65_536 ? svc['Port'] : 0;
    const weight = weightOf(svc['Weights'], health.warning);

    // Service.Address overrides the node's; the matching tagged addresses (lan_ipv4/lan_ipv6) add the other family.
    const candidates: { address: string; port: number | null; what: string }[] = [];
    if (svcAddr !== '') {
      candidates.push({ address: svcAddr, port: null, what: 'Service.Address' });
      for (const k of ['lan_ipv4', 'lan_ipv6']) {
        const t = tagged(svc['TaggedAddresses'], k);
        if (t) candidates.push({ ...t, what: `Service.TaggedAddresses.${k}` });
      }
    } else {
      candidates.push({ address: str(node['Address']), port: null, what: 'Node.Address' });
      for (const k of ['lan_ipv4', 'lan_ipv6']) {
        const t = tagged(node['TaggedAddresses'], k);
        if (t) candidates.push({ ...t, what: `Node.TaggedAddresses.${k}` });
      }
    }
    let usable = false;
    for (const c of candidates) {
      const canon = canonicalAddress(c.address);
      if (canon !== null) usable = true;
      if (canon === null) {
        opts.warn(
          `${opts.scope}/${opts.name}/${nodeName}/${serviceId}/${c.address}`,
          `Consul ${c.what} "${c.address}" of ${opts.name} (${serviceId} on ${nodeName}) is not an IP address; skipped`,
          { service: opts.name, scope: opts.scope, node: nodeName, serviceId, address: c.address },
        );
        continue;
      }
      const port = c.port ?? svcPort;
      const ports = portsOf(port);
      const key = `${canon.address}|${port}`;
      const prev = byKey.get(key);
      // Two registrations on one address and port are one SRV target; keep the larger weight and all tags.
      if (prev) {
        const mergedTags = shareTags([...new Set([...prev.tags, ...tags])].sort());
        byKey.set(key, { ...prev, weight: Math.max(prev.weight, weight), tags: mergedTags });
      } else {
        // §2.6: the service ID names the instance (several instances share a node, so not the node name).
        const name = instanceLabel(serviceId);
        byKey.set(key, name === null ? { address: canon.address, family: canon.family, ports, weight, tags } : { address: canon.address, family: canon.family, ports, weight, tags, name });
      }
    }
    // Healthy, but no address of it can be answered: listed with the reason (the warning above went to the log).
    if (!usable) (unhealthy ??= []).push(unhealthyEntry(candidates[0]!.address, serviceId, REASON_BAD_ADDRESS));
  }
  const instances = [...byKey.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((x) => x[1]);
  return { instances, knownTags: shareTags([...known].sort()) as string[], nodes: [...nodes], malformed, unhealthy: unhealthy && sortUnhealthy(unhealthy) };
}

/** An entry not served: its address (canonical when it is an IP) and its service ID, which names it in Consul. */
function unhealthyEntry(address: string, serviceId: string, reason: string): UnhealthyInstance {
  const a = canonicalAddress(address)?.address ?? address;
  return serviceId === '' ? { address: a, reason } : { address: a, name: serviceId, reason };
}

const sameList = <T>(a: readonly T[], b: readonly T[]): boolean => a === b || (a.length === b.length && a.every((x, i) => x === b[i]));

/**
 * Whether `prev` serves exactly these instances and tags and lists the same unhealthy ones: unchanged services
 * keep their object (store diff).
 */
export function sameServed(prev: Service, instances: readonly Instance[], ttlSeconds: number | undefined, knownTags: readonly string[], unhealthy?: readonly UnhealthyInstance[]): boolean {
  return sameUnhealthy(prev.unhealthy, unhealthy) && sameAnswers(prev, instances, ttlSeconds, knownTags);
}

/** Whether `prev` serves exactly these instances and tags (what DNS answers read; Service.unhealthy aside). */
function sameAnswers(prev: Service, instances: readonly Instance[], ttlSeconds: number | undefined, knownTags: readonly string[]): boolean {
  if (prev.ttlSeconds !== ttlSeconds || !sameList(prev.knownTags ?? [], knownTags) || prev.instances.length !== instances.length) return false;
  for (let k = 0; k < instances.length; k++) {
    const a = prev.instances[k]!;
    const b = instances[k]!;
    if (a.address !== b.address || a.weight !== b.weight || a.name !== b.name || !sameList(a.tags, b.tags)) return false;
    if (a.ports !== b.ports && !sameList(a.ports.map((p) => p.port), b.ports.map((p) => p.port))) return false;
  }
  return true;
}

/** Cheap structural identity of a service's data (served and unhealthy), so unchanged services keep their object. */
export function signature(instances: readonly Instance[], ttlSeconds: number | undefined, knownTags: readonly string[] = [], unhealthy: readonly UnhealthyInstance[] = []): string {
  let s = `${ttlSeconds ?? ''}|${knownTags.join(',')}`;
  for (const i of instances) {
    s += `;${i.address}/${i.weight}/${i.ports.map((p) => p.port).join(',')}/${i.tags.join(',')}/${i.name ?? ''}`;
  }
  for (const u of unhealthy) s += `;!${u.address}/${u.name ?? ''}/${u.reason}`;
  return s;
}

/**
 * The Service for a translated reply. `prev`: the one emitted before; when it serves the same (only the unhealthy
 * list differs) the new object keeps its instance and tag arrays, so what DNS answers read is the same data.
 */
export function makeService(
  name: string,
  scope: string,
  instances: readonly Instance[],
  ttlSeconds: number | undefined,
  knownTags?: readonly string[],
  unhealthy?: readonly UnhealthyInstance[],
  prev?: Service | null,
): Service {
  if (prev && knownTags !== undefined && sameAnswers(prev, instances, ttlSeconds, knownTags)) {
    instances = prev.instances;
    knownTags = prev.knownTags ?? knownTags;
  }
  const svc: Service = ttlSeconds === undefined ? { name, scope, instances } : { name, scope, ttlSeconds, instances };
  const withTags = knownTags === undefined ? svc : { ...svc, knownTags };
  return unhealthy === undefined || unhealthy.length === 0 ? withTags : { ...withTags, unhealthy };
}

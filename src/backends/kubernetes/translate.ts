// backends/kubernetes/translate: Kubernetes objects (EndpointSlice, legacy Endpoints) → served endpoints → Service.
// Pure functions, no I/O. Accepts both raw watch JSON and the client's deserialized objects (same field names).

import type { Instance, Port, Service, UnhealthyInstance } from '../../model/service.ts';
import { sameUnhealthy, sortUnhealthy } from '../../model/service.ts';
import { canonicalAddress, instanceLabel, isLabel } from '../../model/names.ts';

/** The label the EndpointSlice controller puts on every slice of a Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** What one Kubernetes object contributes to one Service (healthy endpoints only, §6.1). */
export interface Contribution {
  /** Namespace = scope. */
  readonly scope: string;
  /** Service name (slice label / Endpoints name), lowercase. */
  readonly service: string;
  /**
   * This object's served instances, already in Service form: one per distinct address (sorted), carrying the
   * union of its ports (sorted by portSig). A Service fed by one object serves this very array (no copy).
   */
  readonly endpoints: readonly Instance[];
  /** Names of the object's ports, whether or not an endpoint is ready, sorted (§2.2: other names answer NXDOMAIN). */
  readonly portNames?: readonly string[];
  /** Addresses or ports dropped as unusable (FQDN slices, SCTP, hostnames): for debug logs only. */
  readonly skipped: number;
  /**
   * The object's endpoints that are not served and why (Service.unhealthy, the status page): one per address,
   * sorted, none for an address this object serves. Absent when there are none (the usual case).
   */
  readonly unhealthy?: readonly UnhealthyInstance[];
}

// Why an endpoint is not served (Service.unhealthy). Constants: one string whatever the number of endpoints, and
// an endpoint whose conditions did not change gives the same reason (no churn of the store or the answer cache).
/** EndpointSlice `conditions.ready: false` (not terminating), or a legacy Endpoints `notReadyAddresses` entry. */
export const REASON_NOT_READY = 'not ready';
/** `conditions.terminating: true` and `serving: true`: the Pod is shutting down but still answers. */
export const REASON_TERMINATING_SERVING = 'terminating (serving: true)';
/** `conditions.terminating: true`, not serving. */
export const REASON_TERMINATING = 'terminating';
/** An address that is not an IP of the slice's addressType (or, in Endpoints, not an IP at all). */
export const REASON_NOT_IPV4 = 'not an IPv4 address';
export const REASON_NOT_IPV6 = 'not an IPv6 address';
export const REASON_NOT_IP = 'not an IP address';
/** `addressType: FQDN` slices (deprecated): no A/AAAA can be made from them. */
export const REASON_FQDN = 'FQDN endpoint (no A/AAAA)';

const NO_TAGS: readonly string[] = Object.freeze([]);
const portSig = (p: Port) => `${p.name ?? ''}|${p.port}|${p.protocol}`;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Namespace and name of any object, or null when metadata is missing. */
export function objectKey(obj: unknown): { namespace: string; name: string } | null {
  if (!isObj(obj) || !isObj(obj.metadata)) return null;
  const name = str(obj.metadata.name);
  if (!name) return null;
  return { namespace: str(obj.metadata.namespace) ?? '', name };
}

/** Kubernetes ports → our ports. Unnamed port → name null; SCTP, missing numbers: skipped (no SRV form). */
function translatePorts(raw: unknown): { ports: readonly Port[]; skipped: number } {
  const ports: Port[] = [];
  let skipped = 0;
  for (const p of arr(raw)) {
    if (!isObj(p)) { skipped++; continue; }
    const proto = (str(p.protocol) ?? 'TCP').toUpperCase();
    const port = p.port;
    if ((proto !== 'TCP' && proto !== 'UDP') || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      skipped++;
      continue;
    }
    const rawName = (str(p.name) ?? '').toLowerCase();
    // The protocol as a constant: one 'tcp' string for every port, not one per port (issue 11 item 4).
    ports.push({ name: rawName !== '' && isLabel(rawName) ? rawName : null, port, protocol: proto === 'TCP' ? 'tcp' : 'udp' });
  }
  return { ports: sortedPorts(ports), skipped };
}

/**
 * Ports sorted by portSig and de-duplicated: the order every Instance of this module carries. Always an
 * exact-size array (a pushed-to array keeps room for 17: 10k slices' port lists cost 1.3 MB more, issue 11 item 4).
 */
function sortedPorts(ports: readonly Port[]): readonly Port[] {
  if (ports.length < 2) return ports.slice();
  const bySig = new Map<string, Port>();
  for (const p of ports) bySig.set(portSig(p), p);
  return [...bySig.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, p]) => p);
}

/** address → its port lists (one per subset/slice it appears in) → sorted Instances with merged ports. */
function toInstances(byAddr: Map<string, { family: 4 | 6; ports: (readonly Port[])[]; name?: string | undefined }>): Instance[] {
  const addresses = [...byAddr.keys()].sort();
  const out = new Array<Instance>(addresses.length); // exact size: this array is what the Service serves
  for (let k = 0; k < addresses.length; k++) {
    const address = addresses[k]!;
    const e = byAddr.get(address)!;
    const ports = e.ports.length === 1 ? e.ports[0]! : sortedPorts(e.ports.flat());
    out[k] = e.name === undefined ? { address, family: e.family, ports, weight: 1, tags: NO_TAGS } : { address, family: e.family, ports, weight: 1, tags: NO_TAGS, name: e.name };
  }
  return out;
}

/**
 * discovery.k8s.io/v1 EndpointSlice → contribution. Null when the slice belongs to no Service (no
 * `kubernetes.io/service-name` label) or has an unusable name/namespace.
 * Served endpoint: `conditions.ready` true or absent (nil means ready, per the API) and not terminating.
 */
export function fromEndpointSlice(obj: unknown): Contribution | null {
  const key = objectKey(obj);
  if (!key || !isObj(obj)) return null;
  const meta = obj.metadata as Obj;
  const labels = isObj(meta.labels) ? meta.labels : {};
  const service = (str(labels[SERVICE_NAME_LABEL]) ?? '').toLowerCase();
  const scope = key.namespace.toLowerCase();
  if (!isLabel(service) || !isLabel(scope)) return null;
  const addressType = str(obj.addressType);
  const want = addressType === 'IPv4' ? 4 : addressType === 'IPv6' ? 6 : 0; // FQDN slices: deprecated, no A/AAAA
  const { ports, skipped: portsSkipped } = translatePorts(obj.ports);
  let skipped = portsSkipped;
  const byAddr = new Map<string, { family: 4 | 6; ports: (readonly Port[])[]; name?: string | undefined }>();
  let unhealthy: Map<string, UnhealthyInstance> | undefined;
  const badAddress = want === 4 ? REASON_NOT_IPV4 : want === 6 ? REASON_NOT_IPV6 : REASON_FQDN;
  for (const ep of arr(obj.endpoints)) {
    if (!isObj(ep)) continue;
    const c = isObj(ep.conditions) ? ep.conditions : {};
    const name = endpointName(ep.hostname, ep.targetRef);
    const notServed = c.terminating === true ? (c.serving === true ? REASON_TERMINATING_SERVING : REASON_TERMINATING) : c.ready === false ? REASON_NOT_READY : null;
    for (const a of arr(ep.addresses)) {
      const ca = typeof a === 'string' ? canonicalAddress(a) : null;
      const usable = ca !== null && ca.family === want;
      if (notServed !== null || !usable) {
        if (!usable && notServed === null) skipped++;
        if (typeof a === 'string') (unhealthy ??= new Map()).set(ca?.address ?? a, unhealthyEntry(ca?.address ?? a, name, usable ? notServed! : badAddress));
        continue;
      }
      if (!byAddr.has(ca.address)) byAddr.set(ca.address, name === null ? { family: ca.family, ports: [ports] } : { family: ca.family, ports: [ports], name });
    }
  }
  return withUnhealthy({ scope, service, endpoints: toInstances(byAddr), portNames: namesOf(ports).sort().slice(), skipped }, unhealthy, byAddr);
}

function unhealthyEntry(address: string, name: string | null, reason: string): UnhealthyInstance {
  return name === null ? { address, reason } : { address, name, reason };
}

/** The contribution with its unhealthy list (sorted, none for a served address), or as is when there is none. */
function withUnhealthy(c: Contribution, unhealthy: Map<string, UnhealthyInstance> | undefined, served: ReadonlyMap<string, unknown>): Contribution {
  if (unhealthy === undefined) return c;
  const list: UnhealthyInstance[] = [];
  for (const [address, u] of unhealthy) if (!served.has(address)) list.push(u);
  return list.length === 0 ? c : { ...c, unhealthy: sortUnhealthy(list) };
}

/** §2.6: an endpoint's instance name: its `hostname`, else the name of the Pod its `targetRef` points at. */
function endpointName(hostname: unknown, targetRef: unknown): string | null {
  const h = instanceLabel(str(hostname));
  if (h !== null) return h;
  return isObj(targetRef) && str(targetRef.kind) === 'Pod' ? instanceLabel(str(targetRef.name)) : null;
}

function namesOf(ports: readonly Port[]): string[] {
  const out: string[] = [];
  for (const p of ports) if (p.name !== null && !out.includes(p.name)) out.push(p.name);
  return out;
}

/** Legacy core/v1 Endpoints → contribution: every subset's `addresses` × its ports, never `notReadyAddresses`. */
export function fromEndpoints(obj: unknown): Contribution | null {
  const key = objectKey(obj);
  if (!key || !isObj(obj)) return null;
  const service = key.name.toLowerCase();
  const scope = key.namespace.toLowerCase();
  if (!isLabel(service) || !isLabel(scope)) return null;
  const byAddr = new Map<string, { family: 4 | 6; ports: (readonly Port[])[]; name?: string | undefined }>();
  const portNames: string[] = [];
  let skipped = 0;
  let unhealthy: Map<string, UnhealthyInstance> | undefined;
  const notServed = (a: unknown, reason: string) => {
    if (!isObj(a) || typeof a.ip !== 'string') return;
    const address = canonicalAddress(a.ip)?.address ?? a.ip;
    (unhealthy ??= new Map()).set(address, unhealthyEntry(address, endpointName(a.hostname, a.targetRef), reason));
  };
  for (const subset of arr(obj.subsets)) {
    if (!isObj(subset)) continue;
    const { ports, skipped: ps } = translatePorts(subset.ports);
    skipped += ps;
    for (const n of namesOf(ports)) if (!portNames.includes(n)) portNames.push(n);
    for (const a of arr(subset.addresses)) {
      const ca = isObj(a) && typeof a.ip === 'string' ? canonicalAddress(a.ip) : null;
      if (!ca) { skipped++; notServed(a, REASON_NOT_IP); continue; }
      const e = byAddr.get(ca.address);
      const name = endpointName((a as Obj).hostname, (a as Obj).targetRef);
      if (e) e.ports.push(ports);
      else byAddr.set(ca.address, name === null ? { family: ca.family, ports: [ports] } : { family: ca.family, ports: [ports], name });
    }
    for (const a of arr(subset.notReadyAddresses)) notServed(a, isObj(a) && typeof a.ip === 'string' && canonicalAddress(a.ip) !== null ? REASON_NOT_READY : REASON_NOT_IP);
  }
  return withUnhealthy({ scope, service, endpoints: toInstances(byAddr), portNames: portNames.sort().slice(), skipped }, unhealthy, byAddr);
}

/**
 * Merge every contribution of one Service (several slices, or several subsets) into one Service:
 * one instance per distinct address carrying the union of its ports (de-duplicated). Kubernetes has no tags:
 * `tags` stays empty and the answer layer matches port names itself (§2.2 "a port name also acts as a tag",
 * §2.3b), so `_dns._tcp` never selects a UDP-only port named dns. `knownTags`: every port name of every
 * contribution, ready endpoints or not.
 * Returns `prev` itself when nothing changed, so the store can skip it by identity. One contribution (the usual
 * single slice) is served as is: its instances and port names arrays are the Service's, no copy.
 */
export function buildService(
  scope: string,
  name: string,
  contributions: Iterable<Contribution>,
  prev: Service | undefined,
): Service {
  let only: Contribution | undefined;
  let many: Contribution[] | undefined;
  for (const c of contributions) {
    if (only === undefined) only = c;
    else (many ??= [only]).push(c);
  }
  let instances: readonly Instance[];
  let knownTags: readonly string[];
  let unhealthy: readonly UnhealthyInstance[] | undefined;
  if (many === undefined) {
    instances = only?.endpoints ?? NO_INSTANCES;
    knownTags = only?.portNames ?? NO_TAGS;
    unhealthy = only?.unhealthy;
  } else {
    const byAddr = new Map<string, Instance[]>();
    const known = new Set<string>();
    for (const c of many) {
      for (const n of c.portNames ?? NO_TAGS) known.add(n);
      for (const i of c.endpoints) {
        const list = byAddr.get(i.address);
        if (list) list.push(i);
        else byAddr.set(i.address, [i]);
      }
    }
    const merged: Instance[] = [];
    for (const address of [...byAddr.keys()].sort()) {
      const list = byAddr.get(address)!;
      const first = list[0]!;
      merged.push(list.length === 1 ? first : { ...first, ports: sortedPorts(list.flatMap((i) => i.ports)) });
    }
    instances = merged;
    knownTags = [...known].sort();
    unhealthy = mergeUnhealthy(many, byAddr);
  }
  if (prev && sameInstances(prev.instances, instances) && sameStrings(prev.knownTags ?? NO_TAGS, knownTags)) {
    if (sameUnhealthy(prev.unhealthy, unhealthy)) return prev;
    // Only the unhealthy set changed (the status page shows it; DNS does not read it): a new object that keeps
    // the served arrays, so what answers read is the very same data.
    instances = prev.instances;
    knownTags = prev.knownTags ?? knownTags;
  }
  return unhealthy === undefined ? { name, scope, instances, knownTags } : { name, scope, instances, knownTags, unhealthy };
}

/** Several objects' unhealthy endpoints: one per address that none of them serves, sorted; undefined for none. */
function mergeUnhealthy(contributions: readonly Contribution[], served: ReadonlyMap<string, unknown>): readonly UnhealthyInstance[] | undefined {
  let byAddr: Map<string, UnhealthyInstance> | undefined;
  for (const c of contributions) {
    for (const u of c.unhealthy ?? NO_UNHEALTHY) if (!served.has(u.address) && !byAddr?.has(u.address)) (byAddr ??= new Map()).set(u.address, u);
  }
  return byAddr === undefined ? undefined : sortUnhealthy([...byAddr.values()]);
}

const NO_UNHEALTHY: readonly UnhealthyInstance[] = Object.freeze([]);

const NO_INSTANCES: readonly Instance[] = Object.freeze([]);

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameInstances(a: readonly Instance[], b: readonly Instance[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (x.address !== y.address || x.weight !== y.weight || x.name !== y.name || x.ports.length !== y.ports.length) return false;
    if (x.ports === y.ports) continue;
    for (let j = 0; j < x.ports.length; j++) if (portSig(x.ports[j]!) !== portSig(y.ports[j]!)) return false;
  }
  return true;
}

/**
 * What the informer's cache keeps of one object (issue 11 item 4): its identity and resourceVersion — all that
 * ListWatch reads — plus our translation of it. Everything else (managedFields, targetRefs, zones, hints,
 * conditions, annotations) is dropped as the object arrives, so it never lives past its LIST page or watch line.
 */
export interface SlimObject {
  readonly metadata: { readonly name: string; readonly namespace: string; readonly resourceVersion?: string };
  /** Null: the object belongs to no Service we serve (no service-name label, unusable name). */
  readonly contribution: Contribution | null;
}

/** Raw API object → SlimObject; null without a name (not an object we can track). */
export function slimObject(obj: unknown, api: 'endpointslices' | 'endpoints'): SlimObject | null {
  const key = objectKey(obj);
  if (!key) return null;
  const rv = ((obj as Obj).metadata as Obj).resourceVersion;
  const metadata = typeof rv === 'string' ? { name: key.name, namespace: key.namespace, resourceVersion: rv } : { name: key.name, namespace: key.namespace };
  return { metadata, contribution: api === 'endpointslices' ? fromEndpointSlice(obj) : fromEndpoints(obj) };
}

// backends/kubernetes/translate: Kubernetes objects (EndpointSlice, legacy Endpoints) → served endpoints → Service.
// Pure functions, no I/O. Accepts both raw watch JSON and the client's deserialized objects (same field names).

import type { Instance, Port, Protocol, Service } from '../../model/service.ts';
import { canonicalAddress, isLabel } from '../../model/names.ts';

/** The label the EndpointSlice controller puts on every slice of a Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** One served address of one object, with that object's ports. */
export interface ServedEndpoint {
  readonly address: string;
  readonly family: 4 | 6;
  readonly ports: readonly Port[];
}

/** What one Kubernetes object contributes to one Service (healthy endpoints only, §6.1). */
export interface Contribution {
  /** Namespace = scope. */
  readonly scope: string;
  /** Service name (slice label / Endpoints name), lowercase. */
  readonly service: string;
  readonly endpoints: readonly ServedEndpoint[];
  /** Names of the object's ports, whether or not an endpoint is ready (§2.2: other names answer NXDOMAIN). */
  readonly portNames?: readonly string[];
  /** Addresses or ports dropped as unusable (FQDN slices, SCTP, hostnames): for debug logs only. */
  readonly skipped: number;
}

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
function translatePorts(raw: unknown): { ports: Port[]; skipped: number } {
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
    ports.push({ name: rawName !== '' && isLabel(rawName) ? rawName : null, port, protocol: proto.toLowerCase() as Protocol });
  }
  return { ports, skipped };
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
  const endpoints: ServedEndpoint[] = [];
  for (const ep of arr(obj.endpoints)) {
    if (!isObj(ep)) continue;
    const c = isObj(ep.conditions) ? ep.conditions : {};
    if (c.ready === false || c.terminating === true) continue;
    for (const a of arr(ep.addresses)) {
      const ca = typeof a === 'string' ? canonicalAddress(a) : null;
      if (!ca || ca.family !== want) { skipped++; continue; }
      endpoints.push({ address: ca.address, family: ca.family, ports });
    }
  }
  return { scope, service, endpoints, portNames: namesOf(ports), skipped };
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
  const endpoints: ServedEndpoint[] = [];
  const portNames: string[] = [];
  let skipped = 0;
  for (const subset of arr(obj.subsets)) {
    if (!isObj(subset)) continue;
    const { ports, skipped: ps } = translatePorts(subset.ports);
    skipped += ps;
    for (const n of namesOf(ports)) if (!portNames.includes(n)) portNames.push(n);
    for (const a of arr(subset.addresses)) {
      const ca = isObj(a) && typeof a.ip === 'string' ? canonicalAddress(a.ip) : null;
      if (!ca) { skipped++; continue; }
      endpoints.push({ address: ca.address, family: ca.family, ports });
    }
  }
  return { scope, service, endpoints, portNames, skipped };
}

const NO_TAGS: readonly string[] = Object.freeze([]);

const portSig = (p: Port) => `${p.name ?? ''}|${p.port}|${p.protocol}`;

/**
 * Merge every contribution of one Service (several slices, or several subsets) into one Service:
 * one instance per distinct address carrying the union of its ports (de-duplicated). Kubernetes has no tags:
 * `tags` stays empty and the answer layer matches port names itself (§2.2 "a port name also acts as a tag",
 * §2.3b), so `_dns._tcp` never selects a UDP-only port named dns.
 * Returns `prev` itself when nothing changed, so the store can skip it by identity.
 */
export function buildService(
  scope: string,
  name: string,
  contributions: Iterable<Contribution>,
  prev: Service | undefined,
): Service {
  const byAddr = new Map<string, { family: 4 | 6; ports: Map<string, Port> }>();
  const known = new Set<string>();
  for (const c of contributions) {
    for (const n of c.portNames ?? []) known.add(n);
    for (const ep of c.endpoints) {
      let e = byAddr.get(ep.address);
      if (!e) byAddr.set(ep.address, (e = { family: ep.family, ports: new Map() }));
      for (const p of ep.ports) e.ports.set(portSig(p), p);
    }
  }
  const instances: Instance[] = [...byAddr.keys()].sort().map((address) => {
    const e = byAddr.get(address)!;
    const ports = [...e.ports.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, p]) => p);
    return { address, family: e.family, ports, weight: 1, tags: NO_TAGS };
  });
  const knownTags = [...known].sort();
  if (prev && sameInstances(prev.instances, instances) && (prev.knownTags ?? []).join(',') === knownTags.join(',')) return prev;
  return { name, scope, instances, knownTags };
}

function sameInstances(a: readonly Instance[], b: readonly Instance[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.address !== y.address || x.weight !== y.weight || x.ports.length !== y.ports.length) return false;
    for (let j = 0; j < x.ports.length; j++) if (portSig(x.ports[j]!) !== portSig(y.ports[j]!)) return false;
  }
  return true;
}

// answer/answer: query name → response plan per dns-behaviour.md §1–§3 and §5, reading the store. Implements the
// DNS layer's Responder. Runs only on cache misses, so clarity wins over micro-optimisation here.

import type { Instance, Port } from '../model/service.ts';
import { addressFromLabel, addrLabel, parseReverse } from '../model/names.ts';
import type { Order, Plan, Rec, Responder, SoaData } from '../dns/plan.ts';
import { RCODE, TYPE } from '../dns/wire.ts';
import type { MergedService, Store } from '../store/store.ts';

export interface AnswerOptions {
  /** Lowercase, without trailing dot. */
  readonly domains: readonly string[];
  readonly ttlSeconds: number;
  readonly negativeTtlSeconds: number;
  readonly order: Order;
  readonly maxAnswers: number;
  readonly emptyService: 'nodata' | 'nxdomain';
  /** NS target; default `ns.<domain>` per domain (§1.3). */
  readonly nameserver?: { readonly name?: string | undefined; readonly ipv4: readonly string[]; readonly ipv6: readonly string[] };
  /**
   * SRV targets (§3.2): `addr` (default) the `.addr` name; `instance` the instance's own name (§2.6) when it has
   * one that answers it alone, else the `.addr` name.
   */
  readonly srvTarget?: 'addr' | 'instance' | undefined;
  /** Reverse zones served with PTR (§1.2, §3.8), lowercase without trailing dot: `10.in-addr.arpa`. */
  readonly reverseZones?: readonly string[] | undefined;
}

/** §1.3 SOA timers (seconds). */
const SOA_REFRESH = 3600;
const SOA_RETRY = 600;
const SOA_EXPIRE = 86400;

const SERVICE = 'service';
const ADDR = 'addr';

type Filter =
  | { kind: 'all' }
  /** §2.2: instances carrying tag T; a port named T also matches and, for SRV, selects that port. */
  | { kind: 'tag'; tag: string }
  /** §2.3b: port name (or Consul tag) P with protocol PROTO; only matching ports are answered. */
  | { kind: 'port'; port: string; protocol: string }
  /** §2.6: the healthy instances named so (a tag of the same name wins). */
  | { kind: 'instance'; name: string };

export class Answerer implements Responder {
  readonly #store: Store;
  readonly #o: AnswerOptions;
  /** Domains sorted longest first, so `a.b.sd.internal` matches `b.sd.internal` before `sd.internal`. */
  readonly #domains: string[];

  constructor(store: Store, options: AnswerOptions) {
    this.#store = store;
    this.#o = options;
    this.#domains = [...options.domains].sort((a, b) => b.length - a.length);
    this.#reverse = [...(options.reverseZones ?? [])].sort((a, b) => b.length - a.length);
  }

  /** Reverse zones, longest first (§3.8). */
  readonly #reverse: string[];

  get generation(): number {
    return this.#store.generation;
  }

  get serial(): number {
    return this.#store.serial;
  }

  changedSince(generation: number): ReadonlySet<string> | null {
    return this.#store.changedSince(generation);
  }

  /** The plan, with the store keys it read as its dependencies (§6.4: the cache drops it when one changes). */
  plan(qname: string, qtype: number): Plan {
    this.#store.beginTrack();
    let plan: Plan;
    try {
      plan = this.#plan(qname, qtype);
    } catch (err) {
      this.#store.endTrack();
      throw err;
    }
    // Every plan is a fresh object (see the builders below): set its deps in place rather than copy it.
    (plan as { deps?: Iterable<string> }).deps = this.#store.endTrack();
    return plan;
  }

  #plan(qname: string, qtype: number): Plan {
    const domain = this.#zoneOf(qname);
    if (domain === null) {
      const rev = this.#reverse.length === 0 ? null : zoneIn(this.#reverse, qname);
      return rev === null ? this.#bare(RCODE.REFUSED, false) : this.#reverseName(rev, qname, qtype); // §1.2
    }
    const rel = qname.length === domain.length ? '' : qname.slice(0, qname.length - domain.length - 1);
    return this.#inZone(domain, rel, qtype);
  }

  #zoneOf(qname: string): string | null {
    return zoneIn(this.#domains, qname);
  }

  /**
   * A name in a reverse zone (§3.8): SOA/NS at the apex; PTR for an address some healthy instance has; the
   * intermediate names above such an address are empty non-terminals (§2.5); everything else is NXDOMAIN.
   */
  #reverseName(zone: string, qname: string, qtype: number): Plan {
    if (qname === zone) return this.#apex(zone, qtype);
    const r = parseReverse(qname);
    if (!r.valid) return this.#nx(zone);
    if (r.full === null) return this.#store.hasReverseBelow(qname) ? this.#nodata(zone) : this.#reverseMissing(zone);
    const services = this.#store.servicesAt(r.full.address);
    if (services.length === 0) return this.#reverseMissing(zone);
    if (qtype !== TYPE.PTR && qtype !== TYPE.ANY) return this.#nodata(zone);
    const primary = this.#o.domains[0]!;
    const ttl = this.#o.ttlSeconds;
    const targets: string[] = [];
    const seen = new Set<Instance>(); // a default-scope instance is in the unscoped view and its scope: once
    for (const svc of services) {
      for (const inst of svc.instances) {
        if (inst.address !== r.full.address || inst.name === undefined || seen.has(inst) || svc.tags.has(inst.name)) continue;
        seen.add(inst);
        const t = `${inst.name}.${svc.name}.${SERVICE}${svc.scope === null ? '' : `.${svc.scope}`}.${primary}`;
        if (!targets.includes(t)) targets.push(t);
      }
    }
    if (targets.length === 0) {
      // No instance there has a name: the `.addr` name of the unscoped view, else of each scope that has it.
      const label = addrLabel(r.full.address);
      const unscoped = services[0]!.scope === null;
      for (const svc of services) {
        if (unscoped && svc.scope !== null) break;
        const t = `${label}.${ADDR}${svc.scope === null ? '' : `.${svc.scope}`}.${primary}`;
        if (!targets.includes(t)) targets.push(t);
      }
    }
    return this.#positive(targets.map((target): Rec => ({ name: qname, type: TYPE.PTR, ttl, target })), []);
  }

  /** NXDOMAIN in a reverse zone, or SERVFAIL while any backend has not synced: it may hold the address (§5.4). */
  #reverseMissing(zone: string): Plan {
    return this.#store.anyPending ? this.#bare(RCODE.SERVFAIL, false) : this.#nx(zone);
  }

  /** Whether `zone` is one of the reverse zones (its SOA and NS name the first domain's server, §3.8). */
  #isReverse(zone: string): boolean {
    return this.#reverse.length > 0 && this.#reverse.includes(zone);
  }

  #inZone(domain: string, rel: string, qtype: number): Plan {
    if (rel === '') return this.#apex(domain, qtype);
    const labels = rel.split('.');
    const n = labels.length;
    const ns = this.#nsName(domain);
    if (ns.endsWith(`.${domain}`) && rel === ns.slice(0, ns.length - domain.length - 1)) {
      return this.#nsHost(domain, ns, qtype);
    }

    // Where is the `service` / `addr` label? Unscoped: last label; scoped: second to last, scope last (§2.1).
    const last = labels[n - 1]!;
    let scope: string | null = null;
    let kind: string;
    let prefix: string[];
    if (last === SERVICE || last === ADDR) {
      kind = last;
      prefix = labels.slice(0, n - 1);
    } else if (n >= 2 && (labels[n - 2] === SERVICE || labels[n - 2] === ADDR)) {
      kind = labels[n - 2]!;
      scope = last;
      prefix = labels.slice(0, n - 2);
    } else if (n === 1) {
      // `S.D`: an empty non-terminal when scope S has services (§2.5).
      return this.#store.hasScope(last) ? this.#nodata(domain) : this.#missing(domain, last);
    } else {
      return this.#missing(domain, null);
    }

    if (prefix.length === 0) {
      // `service.D`, `service.S.D`, `addr.D`, `addr.S.D`: empty non-terminals (§2.5).
      if (scope === null || this.#store.hasScope(scope)) return this.#nodata(domain);
      return this.#missing(domain, scope);
    }
    if (kind === ADDR) return this.#addr(domain, scope, prefix, qtype);
    return this.#service(domain, scope, prefix, qtype);
  }

  /** §1.3: SOA and NS at the apex; every other type is NODATA there. */
  #apex(domain: string, qtype: number): Plan {
    const soa = this.#soa(domain);
    const nsRec: Rec = { name: domain, type: TYPE.NS, ttl: this.#o.ttlSeconds, target: this.#nsName(domain) };
    const glue = this.#nsGlue(this.#nsName(domain));
    if (qtype === TYPE.SOA) return this.#positive([soa], []);
    if (qtype === TYPE.NS) return this.#positive([nsRec], glue);
    if (qtype === TYPE.ANY) return this.#positive([soa, nsRec], glue);
    return this.#nodata(domain);
  }

  #nsHost(domain: string, ns: string, qtype: number): Plan {
    const glue = this.#nsGlue(ns);
    const want = glue.filter((r) => qtype === TYPE.ANY || r.type === qtype);
    return want.length > 0 ? this.#positive(want, []) : this.#nodata(domain);
  }

  #nsName(domain: string): string {
    return this.#o.nameserver?.name ?? `ns.${this.#isReverse(domain) ? this.#o.domains[0]! : domain}`;
  }

  #nsGlue(ns: string): Rec[] {
    const o = this.#o.nameserver;
    if (!o) return [];
    const ttl = this.#o.ttlSeconds;
    return [
      ...o.ipv4.map((address): Rec => ({ name: ns, type: TYPE.A, ttl, address })),
      ...o.ipv6.map((address): Rec => ({ name: ns, type: TYPE.AAAA, ttl, address })),
    ];
  }

  /** `X.addr[.S].D` (§2.4): A/AAAA only while some healthy instance in that view has the address. */
  #addr(domain: string, scope: string | null, prefix: string[], qtype: number): Plan {
    const parsed = prefix.length === 1 ? addressFromLabel(prefix[0]!) : null;
    if (!parsed || !this.#store.hasAddress(scope, parsed.address)) return this.#missing(domain, scope);
    const type = parsed.family === 4 ? TYPE.A : TYPE.AAAA;
    if (qtype !== type && qtype !== TYPE.ANY) return this.#nodata(domain);
    // The owner is the name asked: an old spelling (`--1`, §2.4) answers under its own name, not addrLabel's.
    const owner = `${prefix[0]!}.${ADDR}${scope === null ? '' : `.${scope}`}.${domain}`;
    return this.#positive([{ name: owner, type, ttl: this.#o.ttlSeconds, address: parsed.address } as Rec], []);
  }

  #service(domain: string, scope: string | null, prefix: string[], qtype: number): Plan {
    let name: string;
    let filter: Filter;
    let srvOnly = false;
    let maybeInstance = false;
    const u = (s: string) => s.length > 1 && s.charCodeAt(0) === 95; // leading '_'
    const proto = (s: string) => s === '_tcp' || s === '_udp';
    if (prefix.length === 1) {
      name = prefix[0]!;
      filter = { kind: 'all' };
      // `_T.service[.S].D`, when no service is named so: the empty non-terminal above `_N._T` (§2.5, RFC 8020).
      if (u(name) && !this.#store.service(scope, name)) return this.#underscoreEnt(domain, scope, name);
    } else if (prefix.length === 2 && proto(prefix[0]!) && !u(prefix[1]!)) {
      // `_PROTO.N.service[.S].D`: the empty non-terminal above `_P._PROTO.N` (§2.5), there while N is.
      const svc = this.#store.service(scope, prefix[1]!);
      if (!svc) return this.#missing(domain, scope);
      return svc.instances.length === 0 && this.#o.emptyService === 'nxdomain' ? this.#nx(domain) : this.#nodata(domain);
    } else if (prefix.length === 2 && u(prefix[0]!) && u(prefix[1]!)) {
      // §2.3a `_N._T.service`: T is a tag, except `_tcp`/`_udp` which name the protocol (no filter).
      name = prefix[0]!.slice(1);
      const t = prefix[1]!.slice(1);
      filter = t === 'tcp' || t === 'udp' ? { kind: 'all' } : { kind: 'tag', tag: t };
      srvOnly = true;
    } else if (prefix.length === 2 && !u(prefix[1]!)) {
      // `T.N.service` (§2.2) or, when N has no tag or port name T, `<instance>.N.service` (§2.6): tags win.
      name = prefix[1]!;
      filter = { kind: 'tag', tag: prefix[0]! };
      maybeInstance = true;
    } else if (prefix.length === 3 && u(prefix[0]!) && (prefix[1] === '_tcp' || prefix[1] === '_udp')) {
      // §2.3b `_P._PROTO.N.service`.
      name = prefix[2]!;
      filter = { kind: 'port', port: prefix[0]!.slice(1), protocol: prefix[1]!.slice(1) };
      srvOnly = true;
    } else {
      return this.#missing(domain, scope);
    }

    const svc = this.#store.service(scope, name);
    if (!svc) return this.#missing(domain, scope);
    // §2.2: a tag or port name that no registered instance carries (healthy or not) names nothing.
    const tag = filter.kind === 'tag' ? filter.tag : filter.kind === 'port' ? filter.port : null;
    if (tag !== null && !svc.tags.has(tag)) {
      // §2.6: not a tag; a name only while some healthy instance carries it (unhealthy ones are not named).
      if (!maybeInstance || !hasInstanceNamed(svc, tag)) return this.#missing(domain, scope);
      filter = { kind: 'instance', name: tag };
    }
    // §3.3, RFC 8482: ANY may get a subset, never a denial; on an SRV-only name that subset is the SRV RRset.
    const wantSrv = qtype === TYPE.SRV || (srvOnly && qtype === TYPE.ANY);
    const ttl = svc.ttlSeconds ?? this.#o.ttlSeconds;
    if (wantSrv) {
      const selected = select(svc, filter);
      if (selected.length === 0) return this.#empty(domain);
      return this.#srv(domain, scope, svc, this.#ownerName(domain, scope, prefix), ttl, selected);
    }
    // A/AAAA/ANY and other types: which instances match is all that matters (no per-instance objects).
    let any = false;
    let answers: Rec[] | null = null;
    let owner = '';
    for (const inst of svc.instances) {
      if (!matches(inst, filter)) continue;
      any = true;
      if (srvOnly) break;
      const type = inst.family === 4 ? TYPE.A : TYPE.AAAA;
      if (qtype !== type && qtype !== TYPE.ANY) continue;
      if (answers === null) {
        answers = [];
        owner = this.#ownerName(domain, scope, prefix);
      } else if (hasAddress(answers, inst.address)) continue; // §3.1: one record per distinct address
      answers.push({ name: owner, type, ttl, address: inst.address } as Rec);
    }
    if (!any) return this.#empty(domain);
    if (srvOnly) return this.#nodata(domain); // §2.3: A/AAAA on RFC 2782 names answer NODATA
    return answers !== null ? this.#positive(answers, []) : this.#nodata(domain);
  }

  /** §5.3: the name exists; an empty set is NODATA (or NXDOMAIN with emptyService: nxdomain). */
  #empty(domain: string): Plan {
    return this.#o.emptyService === 'nxdomain' ? this.#nx(domain) : this.#nodata(domain);
  }

  /**
   * `_T.service[.S].D` (§2.5): exists while some `_N._T.service[.S].D` does, that is for `_tcp`/`_udp` while the
   * view has a service, and for a tag while some service of the view carries it (§2.3a).
   */
  #underscoreEnt(domain: string, scope: string | null, label: string): Plan {
    const t = label.slice(1);
    const exists = t === 'tcp' || t === 'udp' ? this.#store.hasServices(scope) : this.#store.hasTag(scope, t);
    return exists ? this.#nodata(domain) : this.#missing(domain, scope);
  }

  /** §3.2: one SRV per healthy (instance, port), targets `.addr` names, glue in Additional. */
  #srv(domain: string, scope: string | null, svc: MergedService, owner: string, ttl: number, selected: Selected[]): Plan {
    const answers: Rec[] = [];
    const glue: Rec[] = [];
    const seenTarget = new Set<string>();
    const suffix = `.${ADDR}${scope === null ? '' : `.${scope}`}.${domain}`;
    const named = this.#o.srvTarget === 'instance' ? soleNames(svc) : null;
    const nameSuffix = `.${svc.name}.${SERVICE}${scope === null ? '' : `.${scope}`}.${domain}`;
    for (const { inst, ports } of selected) {
      // srvTarget: instance (§3.2): the instance's own name when it answers exactly this address, else `.addr`.
      const target = named !== null && inst.name !== undefined && named.get(inst.name) === inst.address ? inst.name + nameSuffix : addrLabel(inst.address) + suffix;
      // One record per (target, port): a repeated target (one address, several instances) or a repeated port
      // is rare, so only then are the records already made searched (no key string per record).
      const again = seenTarget.has(target) || ports.length > 1;
      for (const p of ports) {
        if (again && hasSrv(answers, target, p.port)) continue;
        answers.push({ name: owner, type: TYPE.SRV, ttl, srv: { priority: 1, weight: Math.max(1, inst.weight), port: p.port, target } });
      }
      if (ports.length > 0 && !seenTarget.has(target)) {
        seenTarget.add(target);
        glue.push({ name: target, type: inst.family === 4 ? TYPE.A : TYPE.AAAA, ttl, address: inst.address } as Rec);
      }
    }
    if (answers.length === 0) return this.#nodata(domain);
    return this.#positive(answers, glue);
  }

  #ownerName(domain: string, scope: string | null, prefix: string[]): string {
    return `${prefix.join('.')}.${SERVICE}${scope === null ? '' : `.${scope}`}.${domain}`;
  }

  // ---- plans ----

  #soa(domain: string): Rec {
    const o = this.#o;
    const soa: SoaData = {
      mname: this.#nsName(domain),
      rname: `hostmaster.${this.#isReverse(domain) ? this.#o.domains[0]! : domain}`,
      serial: this.#store.serial,
      refresh: SOA_REFRESH,
      retry: SOA_RETRY,
      expire: SOA_EXPIRE,
      minimum: o.negativeTtlSeconds,
    };
    // §1.3: the SOA RR's own TTL is negativeTtl (RFC 2308 §3 uses min(TTL, MINIMUM) for negative caching).
    return { name: domain, type: TYPE.SOA, ttl: o.negativeTtlSeconds, soa };
  }

  #positive(answers: Rec[], additional: Rec[]): Plan {
    return { rcode: RCODE.NOERROR, aa: true, answers, authority: [], additional, order: this.#o.order, maxAnswers: this.#o.maxAnswers };
  }

  /** §5.2 NODATA: NOERROR, empty Answer, SOA in Authority. */
  #nodata(domain: string): Plan {
    return { rcode: RCODE.NOERROR, aa: true, answers: [], authority: [this.#soa(domain)], additional: [], order: 'fixed', maxAnswers: 0 };
  }

  /** §5.1 NXDOMAIN with SOA. */
  #nx(domain: string): Plan {
    return { rcode: RCODE.NXDOMAIN, aa: true, answers: [], authority: [this.#soa(domain)], additional: [], order: 'fixed', maxAnswers: 0 };
  }

  /** A name we do not have: NXDOMAIN, or SERVFAIL while a backend that could own it has not synced (§5.4). */
  #missing(domain: string, scope: string | null): Plan {
    return this.#store.pending(scope) ? this.#bare(RCODE.SERVFAIL, false) : this.#nx(domain);
  }

  #bare(rcode: number, aa: boolean): Plan {
    return { rcode, aa, answers: [], authority: [], additional: [], order: 'fixed', maxAnswers: 0 };
  }
}

interface Selected {
  readonly inst: Instance;
  /** Ports to answer in SRV for this instance. */
  readonly ports: readonly Port[];
}

/** Whether an A/AAAA record of `addr` is among `answers` already (small lists; no Set per plan). */
function hasAddress(answers: readonly Rec[], addr: string): boolean {
  for (let i = 0; i < answers.length; i++) if ((answers[i] as { address?: string }).address === addr) return true;
  return false;
}

function hasSrv(answers: readonly Rec[], target: string, port: number): boolean {
  for (let i = 0; i < answers.length; i++) {
    const r = answers[i]!;
    if (r.type === 33 && r.srv.port === port && r.srv.target === target) return true;
  }
  return false;
}

/** Whether the instance is selected by the filter (what select() decides, without building its port list). */
function matches(inst: Instance, f: Filter): boolean {
  if (f.kind === 'all') return true;
  if (f.kind === 'instance') return inst.name === f.name;
  if (f.kind === 'tag') {
    for (const p of inst.ports) if (p.name === f.tag) return true;
    return inst.tags.includes(f.tag);
  }
  for (const p of inst.ports) if (p.name === f.port && p.protocol === f.protocol) return true;
  if (!inst.tags.includes(f.port)) return false;
  for (const p of inst.ports) if (p.protocol === f.protocol) return true;
  return false;
}

function select(svc: MergedService, f: Filter): Selected[] {
  const out: Selected[] = [];
  for (const inst of svc.instances) {
    if (f.kind === 'all') {
      out.push({ inst, ports: inst.ports });
    } else if (f.kind === 'instance') {
      if (inst.name === f.name) out.push({ inst, ports: inst.ports });
    } else if (f.kind === 'tag') {
      const named = inst.ports.filter((p) => p.name === f.tag);
      if (named.length > 0) out.push({ inst, ports: named });
      else if (inst.tags.includes(f.tag)) out.push({ inst, ports: inst.ports });
    } else {
      const named = inst.ports.filter((p) => p.name === f.port && p.protocol === f.protocol);
      if (named.length > 0) out.push({ inst, ports: named });
      else if (inst.tags.includes(f.port)) {
        const proto = inst.ports.filter((p) => p.protocol === f.protocol);
        if (proto.length > 0) out.push({ inst, ports: proto });
      }
    }
  }
  return out;
}

/** The zone among `zones` (longest first) that `qname` is in, on a label boundary; null when none. */
function zoneIn(zones: readonly string[], qname: string): string | null {
  for (const d of zones) {
    if (qname === d) return d;
    if (qname.length > d.length && qname.endsWith(d) && qname.charCodeAt(qname.length - d.length - 1) === 46) return d;
  }
  return null;
}

/** §2.6: whether a healthy instance of the service is named `name`. */
function hasInstanceNamed(svc: MergedService, name: string): boolean {
  for (const i of svc.instances) if (i.name === name) return true;
  return false;
}

/**
 * Instance names of the service that can be SRV targets (§3.2, `srvTarget: instance`): name → its one address.
 * A name that is also a tag (tags win, §2.6) or that names instances at two addresses is left out: its A/AAAA
 * would not be the glue of one target.
 */
function soleNames(svc: MergedService): Map<string, string | null> {
  const out = new Map<string, string | null>();
  for (const i of svc.instances) {
    if (i.name === undefined || svc.tags.has(i.name)) continue;
    const had = out.get(i.name);
    out.set(i.name, had === undefined || had === i.address ? i.address : null);
  }
  return out;
}

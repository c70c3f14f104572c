// answer/answer: query name → response plan per dns-behaviour.md §1–§3 and §5, reading the store. Implements the
// DNS layer's Responder. Runs only on cache misses, so clarity wins over micro-optimisation here.

import type { Instance, Port } from '../model/service.ts';
import { addressFromLabel, addrLabel } from '../model/names.ts';
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
  | { kind: 'port'; port: string; protocol: string };

export class Answerer implements Responder {
  readonly #store: Store;
  readonly #o: AnswerOptions;
  /** Domains sorted longest first, so `a.b.sd.internal` matches `b.sd.internal` before `sd.internal`. */
  readonly #domains: string[];

  constructor(store: Store, options: AnswerOptions) {
    this.#store = store;
    this.#o = options;
    this.#domains = [...options.domains].sort((a, b) => b.length - a.length);
  }

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
    if (domain === null) return this.#bare(RCODE.REFUSED, false); // §1.2
    const rel = qname.length === domain.length ? '' : qname.slice(0, qname.length - domain.length - 1);
    return this.#inZone(domain, rel, qtype);
  }

  #zoneOf(qname: string): string | null {
    for (const d of this.#domains) {
      if (qname === d) return d;
      if (qname.length > d.length && qname.endsWith(d) && qname.charCodeAt(qname.length - d.length - 1) === 46) return d;
    }
    return null;
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
    return this.#o.nameserver?.name ?? `ns.${domain}`;
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
      name = prefix[1]!;
      filter = { kind: 'tag', tag: prefix[0]! };
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
    if (tag !== null && !svc.tags.has(tag)) return this.#missing(domain, scope);
    // §3.3, RFC 8482: ANY may get a subset, never a denial; on an SRV-only name that subset is the SRV RRset.
    const wantSrv = qtype === TYPE.SRV || (srvOnly && qtype === TYPE.ANY);
    const ttl = svc.ttlSeconds ?? this.#o.ttlSeconds;
    if (wantSrv) {
      const selected = select(svc, filter);
      if (selected.length === 0) return this.#empty(domain);
      return this.#srv(domain, scope, this.#ownerName(domain, scope, prefix), ttl, selected);
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
  #srv(domain: string, scope: string | null, owner: string, ttl: number, selected: Selected[]): Plan {
    const answers: Rec[] = [];
    const glue: Rec[] = [];
    const seenTarget = new Set<string>();
    const suffix = `.${ADDR}${scope === null ? '' : `.${scope}`}.${domain}`;
    for (const { inst, ports } of selected) {
      const target = addrLabel(inst.address) + suffix;
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
      rname: `hostmaster.${domain}`,
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

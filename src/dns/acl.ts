// dns/acl: client access control (`acl:`), CoreDNS-acl style — ordered rules of CIDR prefixes, optionally
// limited to query types, with the action `allow`, `refuse` (REFUSED) or `drop` (no answer). The first rule that
// matches decides; no rule matching allows. Evaluated by the listeners before any answer work, over a flat
// compiled table: no allocation per query.

import { z } from 'zod';
import { compilePrefixes, prefixContains, prefixSchema, type Family } from './cidr.ts';

/** What a rule does with a matching query; also the metric index of the action. */
export const ACL = { ALLOW: 0, REFUSE: 1, DROP: 2 } as const;
export type AclAction = (typeof ACL)[keyof typeof ACL];
export const ACL_ACTIONS = ['allow', 'refuse', 'drop'] as const;

/** Query type names a rule may list (or a number 0..65535). */
export const QTYPE_NAMES: Readonly<Record<string, number>> = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, NAPTR: 35, SVCB: 64, HTTPS: 65,
  IXFR: 251, AXFR: 252, ANY: 255, CAA: 257,
};

const qtype = z.union([
  z.number().int().min(0).max(65_535),
  z.string().transform((s, ctx) => {
    const t = QTYPE_NAMES[s.toUpperCase()] ?? (/^TYPE\d{1,5}$/i.test(s) ? Number(s.slice(4)) : undefined);
    if (t === undefined || t > 65_535) {
      ctx.addIssue({ code: 'custom', message: `unknown query type "${s}" (use ${Object.keys(QTYPE_NAMES).join(', ')} or TYPEn)` });
      return z.NEVER;
    }
    return t;
  }),
]);

const oneOrMany = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? [v] : v);

export const aclRuleSchema = z.strictObject({
  action: z.enum(ACL_ACTIONS),
  /** Client prefixes ("10.0.0.0/8", "fd00::/8", "192.0.2.7"); "0.0.0.0/0" and "::/0" match every client. */
  from: z.preprocess(oneOrMany, z.array(prefixSchema).min(1)),
  /** Query types the rule applies to; absent: every type. */
  types: z.preprocess(oneOrMany, z.array(qtype).min(1)).optional(),
});

/** `acl:` — ordered rules; the first match decides; default allow. */
export const aclSchema = z.array(aclRuleSchema).default([]);
export type AclConfig = z.output<typeof aclSchema>;

export class Acl {
  /** One entry per (rule, prefix), in rule order. */
  readonly #entries: { readonly prefix: ReturnType<typeof compilePrefixes>[number]; readonly action: AclAction; readonly types: Uint8Array | null }[];
  /** Some rule lists query types: the listener must read the question's type before asking. */
  readonly needsType: boolean;

  constructor(rules: AclConfig) {
    this.#entries = [];
    let needsType = false;
    for (const r of rules) {
      let types: Uint8Array | null = null;
      if (r.types !== undefined) {
        needsType = true;
        types = new Uint8Array(65_536);
        for (const t of r.types) types[t] = 1;
      }
      const action = ACL_ACTIONS.indexOf(r.action) as AclAction;
      for (const prefix of compilePrefixes(r.from)) this.#entries.push({ prefix, action, types });
    }
    this.needsType = needsType;
  }

  get empty(): boolean {
    return this.#entries.length === 0;
  }

  /**
   * The action for a client address (parsed by cidr.parseAddress) asking for `qtype` (-1 when the question
   * could not be read: a rule limited to types does not match it).
   */
  check(family: Family, addr: Uint32Array, qtype: number): AclAction {
    const e = this.#entries;
    for (let i = 0; i < e.length; i++) {
      const x = e[i]!;
      if (!prefixContains(x.prefix, family, addr)) continue;
      if (x.types !== null && (qtype < 0 || x.types[qtype] !== 1)) continue;
      return x.action;
    }
    return ACL.ALLOW;
  }
}

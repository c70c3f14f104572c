// dns/plan: what the answer layer decides for a query — sections and records in presentation form — and the
// Responder interface the DNS layer calls. The DNS layer turns a Plan into bytes (encode.ts).

export type Order = 'random' | 'round-robin' | 'fixed';

export interface SoaData {
  readonly mname: string;
  readonly rname: string;
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  readonly minimum: number;
}

export interface SrvData {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  /** Lowercase target name without the trailing dot. */
  readonly target: string;
}

/** One resource record. Names are lowercase, without the trailing dot ('' is the root). */
export type Rec =
  | { readonly name: string; readonly type: 1 | 28; readonly ttl: number; readonly address: string }
  | { readonly name: string; readonly type: 2 | 12; readonly ttl: number; readonly target: string }
  | { readonly name: string; readonly type: 6; readonly ttl: number; readonly soa: SoaData }
  | { readonly name: string; readonly type: 33; readonly ttl: number; readonly srv: SrvData };

export interface Plan {
  readonly rcode: number;
  readonly aa: boolean;
  readonly answers: readonly Rec[];
  readonly authority: readonly Rec[];
  /**
   * Candidate glue. A record here is sent only while some answer that is actually sent (after reordering,
   * `maxAnswers` and truncation) names it as SRV or NS target, so Additional always matches Answer (§4.2).
   */
  readonly additional: readonly Rec[];
  /** How answers vary between responses (§3.5). */
  readonly order: Order;
  /** Cap on A/AAAA/SRV answers per response, applied after reordering (§3.6); 0 = no cap. */
  readonly maxAnswers: number;
  /**
   * What this answer was read from, as the Responder's change keys (see `changedSince`). Absent: it may depend
   * on anything, so it is dropped on every change.
   */
  readonly deps?: Iterable<string>;
}

/** The answer layer, as the DNS layer sees it. */
export interface Responder {
  /** Changes whenever any answer may change; cached answers are then checked with `changedSince` (§6.4). */
  readonly generation: number;
  /** The SOA serial now (§1.3): written into every cached SOA at serve time, so negative answers can stay cached. */
  readonly serial: number;
  /**
   * The change keys touched after `generation` (the answers whose `deps` hold one of them are dropped), or null
   * when any answer may have changed (all are dropped).
   */
  changedSince(generation: number): ReadonlySet<string> | null;
  /** Decide the response to a well-formed IN/ANY-class query. `qname` is lowercase without the trailing dot. */
  plan(qname: string, qtype: number): Plan;
}

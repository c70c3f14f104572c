// backends/consul/hint-checks: what changed between two replies of the health-state hint
// (/v1/health/state/any?filter=Status != "passing"), without parsing what did not.
//
// Consul cannot filter on ModifyIndex, so each reply lists every check that is not passing: ~560 KB with 1,500
// of them, twice a second while checks change, almost all of it the same as the reply before. A reply is split
// into element byte ranges (json-array.ts); an element whose exact bytes were in the last reply is looked up, not
// parsed (bench/hint-parse.ts: 10.3-11.2 ms of CPU per such reply parsed whole, 5.7-6.8 ms this way). An element is
// looked up by a hash of its bytes taken during the scan and then compared byte for byte with the element it
// hashed to, in the reply that element came from: no string is made of an element that did not change (copying
// each element into a latin1 string as the key was half of that cost, and most of its garbage).

import { eachArrayRange } from './json-array.ts';

/**
 * One element of a reply: the check it names (null: not a check object), the reply that last listed it, and where
 * its bytes are in that reply.
 */
interface Element {
  readonly key: string | null;
  readonly status: number;
  gen: number;
  buf: Buffer;
  start: number;
  end: number;
}

/** A non-passing status as 0..3: every status but warning is not served, and a change between any two matters. */
function statusCode(s: unknown): number {
  return s === 'warning' ? 0 : s === 'critical' ? 1 : s === 'maintenance' ? 2 : 3;
}

export class HintChecks {
  /** `node \0 service \0 check` → gen × 4 + status code: keys stay from reply to reply, only changes are new strings. */
  readonly #checks = new Map<string, number>();
  /**
   * The last reply's elements by the hash of their bytes (json-array.ts). Two live elements with one hash keep the
   * later one; the other is parsed again when it comes, which costs a parse, never a wrong answer.
   */
  readonly #elements = new Map<number, Element>();
  /** Replies applied; the first only sets the baseline. */
  #gen = 0;

  /**
   * Apply one reply (the bytes of a JSON array of checks). Calls `changed(node, service)` for every check that
   * appeared, disappeared or changed status since the last reply (`service` is '' for a node-level check); none
   * for the first reply. Returns false when the reply is valid JSON but not an array; throws SyntaxError when it
   * is not valid JSON (the next reply then compares against what this one got through).
   */
  apply(b: Buffer, changed: (node: string, service: string) => void): boolean {
    const gen = ++this.#gen;
    const checks = this.#checks;
    const elements = this.#elements;
    const report = (key: string): void => {
      if (gen === 1) return;
      const i = key.indexOf('\u0000');
      changed(key.slice(0, i), key.slice(i + 1, key.indexOf('\u0000', i + 1)));
    };
    const isArray = eachArrayRange(b, (start, end, hash) => {
      let el = elements.get(hash);
      if (el === undefined || b.compare(el.buf, el.start, el.end, start, end) !== 0) {
        const c: unknown = JSON.parse(b.toString('utf8', start, end));
        const o = typeof c === 'object' && c !== null ? (c as Record<string, unknown>) : null;
        el = { key: o && `${String(o['Node'])}\u0000${String(o['ServiceName'] ?? '')}\u0000${String(o['CheckID'])}`, status: statusCode(o?.['Status']), gen, buf: b, start, end };
        elements.set(hash, el);
      } else if (el.gen !== gen) {
        el.gen = gen;
        el.buf = b;
        el.start = start;
        el.end = end;
      }
      if (el.key === null) return;
      const prev = checks.get(el.key);
      if (prev === undefined || prev % 4 !== el.status) report(el.key);
      checks.set(el.key, gen * 4 + el.status);
    });
    if (!isArray) return false;
    // What is left points into this reply only, so no older reply's bytes stay alive.
    // forEach, not for-of: an entries iterator makes a [key, value] array per entry, thousands per reply.
    elements.forEach((el, hash) => {
      if (el.gen !== gen) elements.delete(hash);
    });
    checks.forEach((seen, key) => {
      if (Math.floor(seen / 4) === gen) return;
      checks.delete(key);
      report(key);
    });
    return true;
  }
}

// backends/consul/hint-checks: what changed between two replies of the health-state hint
// (/v1/health/state/any?filter=Status != "passing"), without parsing what did not.
//
// Consul cannot filter on ModifyIndex, so each reply lists every check that is not passing: ~1.1 MB with 3,000
// of them, twice a second while checks change, and almost all of it is byte for byte the reply before, in the
// same order (Consul lists checks in the order of its checks index). So a reply is cut into its elements with
// native searches, and each element is compared with the element at the same place in the last reply (one
// memcmp), or with the one after it when a check left. Only an element that differs is parsed. The cost per unchanged element is then a native search and
// a native compare, not a pass over its bytes in JavaScript: bench/hint-parse.ts at 3,000 checks (1.1 MB, 25
// changed) gives 2.1-3.4 ms of CPU per reply, GC included, against 4.9-5.8 ms for the per-byte scan and hash
// this replaces and 10.4-13.0 ms for the reply parsed whole (0.9-1.4, 2.9-3.0 and 4.7-5.4 ms at 1,500).
//
// The cut: Consul writes compact JSON and a check object starts with its "Node" field, so two elements are
// separated by the bytes `},{"Node":"`. Those bytes cannot stand inside a JSON string (the quote after the
// brace would end the string, and `Node` cannot follow one). A cut can only be wrong where an object nested
// inside a check had a "Node" key. Then some piece is not valid JSON by itself. Every piece is either byte for
// byte a piece already parsed, or parsed now, so pieces that all parse are exactly the elements of a valid
// array. A piece that fails to parse sends the reply to the general scan (json-array.ts), which finds the
// elements by their brackets; so does a reply that does not start with `[{"Node":"` (Consul in dev mode
// indents its replies).

import { eachArrayRange, isSpace } from './json-array.ts';

const SEPARATOR = Buffer.from('},{"Node":"');
const FIRST = Buffer.from('{"Node":"');
const EMPTY = Buffer.alloc(0);

/** A non-passing status as 0..3: every status but warning is not served, and a change between any two matters. */
function statusCode(s: unknown): number {
  return s === 'warning' ? 0 : s === 'critical' ? 1 : s === 'maintenance' ? 2 : 3;
}

/** One reply's elements, in order: the check each names (null: not a check object), its status and its bytes. */
class Elements {
  buf: Buffer = EMPTY;
  length = 0;
  readonly keys: (string | null)[] = [];
  readonly status: number[] = [];
  readonly starts: number[] = [];
  readonly ends: number[] = [];

  /**
   * Empty, for `buf`'s elements. The arrays keep their room (a reply is about as long as the last); key strings
   * past `length` stay referenced until overwritten, but they are dropped when the list has shrunk to a quarter.
   */
  reset(buf: Buffer): void {
    if (this.length * 4 < this.keys.length) this.keys.length = this.status.length = this.starts.length = this.ends.length = this.length;
    this.buf = buf;
    this.length = 0;
  }

  push(key: string | null, status: number, start: number, end: number): void {
    const i = this.length++;
    this.keys[i] = key;
    this.status[i] = status;
    this.starts[i] = start;
    this.ends[i] = end;
  }
}

/** The trimmed bounds of a JSON text in `b`. */
function trimmed(b: Buffer): [number, number] {
  let s = 0;
  let e = b.length;
  while (s < e && isSpace(b[s]!)) s++;
  while (e > s && isSpace(b[e - 1]!)) e--;
  return [s, e];
}

export class HintChecks {
  /** `node \0 service \0 check` → gen × 4 + status code: keys stay from reply to reply, only changes are new strings. */
  readonly #checks = new Map<string, number>();
  /** The last good reply's elements, and the next reply's (swapped when it is applied). */
  #last = new Elements();
  #next = new Elements();
  /** Key → place in #last, built only when a reply's elements moved against it (a check appeared or left). */
  #lastPlace: Map<string, number> | null = null;
  /** The place in #last after the last element matched: where the next element is compared. */
  #cursor = 0;
  /** Replies applied; the first only sets the baseline. */
  #gen = 0;
  /** Elements parsed (for tests and the bench: an unchanged element is never parsed). */
  parsed = 0;

  /**
   * Apply one reply (the bytes of a JSON array of checks). Calls `changed(node, service)` for every check that
   * appeared, disappeared or changed status since the last reply (`service` is '' for a node-level check); none
   * for the first reply. Returns false when the reply is valid JSON but not an array; throws SyntaxError when it
   * is not valid JSON (the next reply then compares against the last good one).
   */
  apply(b: Buffer, changed: (node: string, service: string) => void): boolean {
    const next = this.#next;
    next.reset(b);
    this.#cursor = 0;
    if (!this.#cut(b, next)) {
      next.reset(b);
      this.#cursor = 0;
      const isArray = eachArrayRange(b, (start, end) => this.#element(b, start, end, next, true));
      if (!isArray) return false;
    }
    // The reply is good: commit it.
    const gen = ++this.#gen;
    const checks = this.#checks;
    const report = (key: string): void => {
      if (gen === 1) return;
      const i = key.indexOf('\u0000');
      changed(key.slice(0, i), key.slice(i + 1, key.indexOf('\u0000', i + 1)));
    };
    for (let i = 0; i < next.length; i++) {
      const key = next.keys[i]!;
      if (key === null) continue;
      const status = next.status[i]!;
      const prev = checks.get(key);
      if (prev === undefined || prev % 4 !== status) report(key);
      checks.set(key, gen * 4 + status);
    }
    // forEach, not for-of: an entries iterator makes a [key, value] array per entry, thousands per reply.
    checks.forEach((seen, key) => {
      if (Math.floor(seen / 4) === gen) return;
      checks.delete(key);
      report(key);
    });
    this.#next = this.#last;
    this.#next.buf = EMPTY; // the older reply's bytes go
    this.#last = next;
    this.#lastPlace = null;
    return true;
  }

  /**
   * The compact cut (see the top of this file) into `into`. False when it does not apply or a piece is not JSON
   * by itself: the caller then scans the reply by its brackets.
   */
  #cut(b: Buffer, into: Elements): boolean {
    const [s, e] = trimmed(b);
    if (e - s < 2 || b[s] !== 0x5b || b[e - 1] !== 0x5d) return false;
    let i = s + 1;
    while (i < e - 1 && isSpace(b[i]!)) i++;
    if (i === e - 1) return true; // []
    if (b.compare(FIRST, 0, FIRST.length, i, Math.min(i + FIRST.length, e)) !== 0) return false;
    for (;;) {
      const at = b.indexOf(SEPARATOR, i);
      if (at >= 0 && at < e) {
        if (!this.#element(b, i, at + 1, into, false)) return false;
        i = at + 2;
      } else {
        return this.#element(b, i, e - 1, into, false);
      }
    }
  }

  /**
   * One element at [start, end): the same bytes as the last reply's element at the cursor (the next place after
   * the last one matched), or parsed. False when it does not parse and `strict` is false; throws SyntaxError
   * when it does not parse and `strict` is true.
   */
  #element(b: Buffer, start: number, end: number, into: Elements, strict: boolean): boolean {
    const last = this.#last;
    const j = this.#cursor;
    if (j < last.length) {
      const ls = last.starts[j]!;
      const le = last.ends[j]!;
      if (le - ls === end - start && b.compare(last.buf, ls, le, start, end) === 0) {
        into.push(last.keys[j]!, last.status[j]!, start, end);
        this.#cursor = j + 1;
        return true;
      }
      // The last reply's element at the cursor left (a check recovered or was removed): the one after it is the
      // usual match, found without parsing or building the key → place map.
      const k = j + 1;
      if (k < last.length) {
        const ks = last.starts[k]!;
        const ke = last.ends[k]!;
        if (ke - ks === end - start && b.compare(last.buf, ks, ke, start, end) === 0) {
          into.push(last.keys[k]!, last.status[k]!, start, end);
          this.#cursor = k + 1;
          return true;
        }
      }
    }
    let c: unknown;
    try {
      c = JSON.parse(b.toString('utf8', start, end));
    } catch (err) {
      if (strict) throw err;
      return false;
    }
    this.parsed++;
    const o = typeof c === 'object' && c !== null && !Array.isArray(c) ? (c as Record<string, unknown>) : null;
    const key = o && `${String(o['Node'])}\u0000${String(o['ServiceName'] ?? '')}\u0000${String(o['CheckID'])}`;
    into.push(key, statusCode(o?.['Status']), start, end);
    // Where the last reply had this check: the cursor moves past it, so the elements after it are compared
    // with their old neighbours. A check that appeared leaves the cursor where it was.
    if (key !== null) {
      if (j < last.length && last.keys[j] === key) this.#cursor = j + 1;
      else if (this.#checks.has(key)) {
        // A check the last reply had, elsewhere (a check absent from #checks is new: the cursor stays).
        const at = this.#place(key);
        if (at !== undefined && at >= j) this.#cursor = at + 1;
      }
    }
    return true;
  }

  #place(key: string): number | undefined {
    if (this.#lastPlace === null) {
      const m = new Map<string, number>();
      const last = this.#last;
      for (let i = 0; i < last.length; i++) {
        const k = last.keys[i];
        if (k !== null && k !== undefined && !m.has(k)) m.set(k, i);
      }
      this.#lastPlace = m;
    }
    return this.#lastPlace.get(key);
  }
}

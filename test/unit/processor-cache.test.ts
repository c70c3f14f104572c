// Unit: the encoded-answer cache (architecture rule 3) — keyed by a 32-bit hash of the name, so a hash collision
// must be a miss, never another name's answer; the ID, RD/CD and the client's spelling are patched per query;
// a change drops exactly the names it touched (§6.4), checked against the real store and answerer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Plan, Responder } from '../../src/dns/plan.ts';
import { QueryProcessor } from '../../src/dns/processor.ts';
import { Answerer } from '../../src/answer/answer.ts';
import { Store } from '../../src/store/store.ts';
import { buildQuery, decode, rcode } from '../helpers/dns-client.ts';
import { inst, put, svc } from '../helpers/stack.ts';

function fnv(name: string): number {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(name, 'latin1')) h = Math.imul(h ^ c, 0x01000193);
  return h >>> 0;
}

/** Two different names of the same length whose FNV-1a hashes collide (birthday search). */
function collidingNames(): [string, string] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const n = `s${i.toString(36).padStart(6, '0')}.service.sd.internal`;
    const h = fnv(n);
    const other = seen.get(h);
    if (other !== undefined) return [other, n];
    seen.set(h, n);
  }
}

class Echo implements Responder {
  generation = 1;
  serial = 1;
  calls = 0;
  /** Says nothing about what changed: every generation drops every cached answer. */
  changedSince(): null {
    return null;
  }
  readonly #ids = new Map<string, number>();
  plan(qname: string): Plan {
    this.calls++;
    // A distinct address per name, so serving one name's cached answer for another is visible.
    if (!this.#ids.has(qname)) this.#ids.set(qname, this.#ids.size + 1);
    const address = `10.0.0.${this.#ids.get(qname)!}`;
    return { rcode: 0, aa: true, answers: [{ name: qname, type: 1, ttl: 5, address }], authority: [], additional: [], order: 'fixed', maxAnswers: 0 };
  }
}

/** `answerer`, counting its plans: each plan is a cache miss. */
function countingResponder(answerer: Responder): { responder: Responder; plans: number } {
  const c = {
    plans: 0,
    responder: {
      get generation() {
        return answerer.generation;
      },
      get serial() {
        return answerer.serial;
      },
      changedSince: (g: number) => answerer.changedSince(g),
      plan: (name: Parameters<Responder['plan']>[0], type: number) => {
        c.plans++;
        return answerer.plan(name, type);
      },
    } satisfies Responder,
  };
  return c;
}

const ask = (p: QueryProcessor, name: string, id = 1, rd = true) => {
  const msg = buildQuery(name, 'A', { id, rd });
  return decode(p.process(msg, msg.length, false)!);
};

describe('answer cache', () => {
  it('a hash collision is a miss: each name gets its own answer', () => {
    const [a, b] = collidingNames();
    assert.equal(fnv(a), fnv(b));
    const r = new Echo();
    const p = new QueryProcessor({ responder: r, maxUdpPayloadBytes: 1232, order: 'fixed' });
    const aa = ask(p, a).answers![0]!.data;
    const bb = ask(p, b).answers![0]!.data;
    assert.notEqual(aa, bb);
    assert.equal(ask(p, a).answers![0]!.data, aa);
    assert.equal(ask(p, b).answers![0]!.data, bb);
  });

  it('hits patch ID, RD and the client spelling; a new generation empties the cache', () => {
    const r = new Echo();
    const p = new QueryProcessor({ responder: r, maxUdpPayloadBytes: 1232, order: 'fixed' });
    ask(p, 'web.service.sd.internal', 1, true);
    const hit = ask(p, 'WEB.Service.sd.internal', 2, false);
    assert.equal(r.calls, 1, 'served from cache');
    assert.equal(hit.id, 2);
    assert.equal(hit.flag_rd, false);
    assert.equal(hit.questions![0]!.name, 'WEB.Service.sd.internal');
    assert.equal(hit.answers![0]!.name, 'WEB.Service.sd.internal');
    r.generation = 2;
    ask(p, 'web.service.sd.internal');
    assert.equal(r.calls, 2);
  });
});

describe('answer cache bounds', () => {
  it('stays within its byte budget however many names are asked', () => {
    const p = new QueryProcessor({ responder: new Echo(), maxUdpPayloadBytes: 1232, order: 'fixed', cacheBytes: 64 * 1024 });
    for (let i = 0; i < 2000; i++) ask(p, `n${i}.service.sd.internal`);
    // ~600 B an entry (encoded bytes + overhead): a 64 KiB budget holds about a hundred.
    assert.ok(p.cachedNames > 10 && p.cachedNames < 130, `${p.cachedNames} names cached`);
  });

  it('a client cycling EDNS sizes cannot force a miss per query (sizes fall into classes)', () => {
    const r = new Echo();
    const p = new QueryProcessor({ responder: r, maxUdpPayloadBytes: 1232, order: 'fixed' });
    for (let size = 512; size <= 4096; size += 7) {
      const msg = buildQuery('web.service.sd.internal', 'A', { edns: size });
      p.process(msg, msg.length, false);
    }
    assert.ok(r.calls <= 2, `${r.calls} misses for 512 different sizes`);
  });

  it('issue 11 #6: a flood of distinct unknown names does not evict the names clients ask again; an unknown name asked twice is cached', () => {
    const store = new Store();
    const N = 2000;
    put(store, 'b', Array.from({ length: N }, (_, i) => svc(`svc-${i}`, [inst(`10.1.${i >> 8}.${i & 255}`, [80])])));
    const answerer = new Answerer(store, { domains: ['sd.internal'], ttlSeconds: 5, negativeTtlSeconds: 5, order: 'fixed', maxAnswers: 0, emptyService: 'nodata' });
    const counting = countingResponder(answerer);
    const budget = 1_000_000;
    const p = new QueryProcessor({ responder: counting.responder, maxUdpPayloadBytes: 1232, order: 'fixed', cacheBytes: budget });
    const ask = (name: string) => {
      const m = buildQuery(name, 'A', { id: 7 });
      return decode(p.process(m, m.length, false)!);
    };
    // Hot names until the cache is 80 % full.
    let hot = 0;
    while (hot < N && !(p.cachedBytes > 0.8 * budget)) ask(`svc-${hot++}.service.sd.internal`);
    assert.ok(hot < N, `${N} names did not fill 80 % of ${budget} bytes`);
    const flood = 20_000;
    for (let i = 0; i < flood; i++) assert.equal(rcode(ask(`r${i}x.service.sd.internal`)), 'NXDOMAIN');
    counting.plans = 0;
    for (let i = 0; i < hot; i++) assert.equal(rcode(ask(`svc-${i}.service.sd.internal`)), 'NOERROR');
    assert.equal(counting.plans, 0, `${counting.plans} of ${hot} hot names were evicted by ${flood} distinct unknown names`);
    // An unknown name asked again is cached from then on.
    counting.plans = 0;
    ask('r5x.service.sd.internal');
    ask('r5x.service.sd.internal');
    assert.equal(counting.plans, 1, 'asked a second time it is cached: the third ask is a hit');
  });

  it('issue 11 #6, RFC 3225 §3: 30 variants of one name (type, class, EDNS size, DO) cycled are hits after one round; DO and class echoed per query', () => {
    const store = new Store();
    put(store, 'b', [svc('web', [inst('10.0.0.1', ['http:80']), inst('10.0.0.2', ['http:80'])])]);
    const answerer = new Answerer(store, { domains: ['sd.internal'], ttlSeconds: 5, negativeTtlSeconds: 5, order: 'round-robin', maxAnswers: 0, emptyService: 'nodata' });
    const counting = countingResponder(answerer);
    const p = new QueryProcessor({ responder: counting.responder, maxUdpPayloadBytes: 1232, order: 'round-robin' });
    type V = { type: string; cls: string; edns?: number; dnssecOk: boolean };
    const variants: V[] = [];
    for (const type of ['A', 'AAAA', 'SRV', 'ANY', 'TXT']) {
      variants.push({ type, cls: 'IN', dnssecOk: false }, { type, cls: 'IN', edns: 512, dnssecOk: false }, { type, cls: 'IN', edns: 1232, dnssecOk: false });
      variants.push({ type, cls: 'IN', edns: 4096, dnssecOk: true }, { type, cls: 'ANY', edns: 1232, dnssecOk: false }, { type, cls: 'ANY', edns: 1232, dnssecOk: true });
    }
    assert.equal(variants.length, 30);
    const ask = (v: V, id: number) => {
      const msg = buildQuery('web.service.sd.internal', v.type, { id, class: v.cls, ...(v.edns !== undefined ? { edns: v.edns, dnssecOk: v.dnssecOk } : {}) });
      return decode(p.process(msg, msg.length, false)!);
    };
    const first = variants.map((v, i) => ask(v, i));
    const misses = counting.plans;
    for (let round = 1; round <= 3; round++) {
      variants.forEach((v, i) => {
        const r = ask(v, 1000 * round + i);
        assert.equal(r.id, 1000 * round + i);
        assert.equal(r.questions![0]!.class, v.cls, 'the question echoes the class asked');
        assert.equal(r.questions![0]!.type, v.type);
        const opt = (r.additionals ?? []).find((a) => a.type === 'OPT') as { flags?: number } | undefined;
        assert.equal(opt !== undefined, v.edns !== undefined, 'OPT only when the query had one');
        if (opt) assert.equal(((opt.flags ?? 0) & 0x8000) !== 0, v.dnssecOk, 'DO copied from this query (RFC 3225 §3)');
        const data = (x: typeof r) => (x.answers ?? []).map((a) => JSON.stringify(a.data)).sort();
        assert.deepEqual(data(r), data(first[i]!), 'the same records as the first answer');
      });
    }
    assert.equal(counting.plans, misses, `${counting.plans - misses} misses in three more rounds of the same 30 variants`);
    assert.ok(misses <= 15, `${misses} misses for the first round (5 types × 3 size classes at most)`);
  });
});

describe('answer cache rotation (§3.5, §3.6, §4.2)', () => {
  // A/AAAA answers are rotated at serve time from one kept copy of the records (issue 11 #4): every window of
  // `shown` records, wrapping around the end, must be whole, in order, and every record must come first in turn.
  for (const [label, opts, maxAnswers, tcp, wantShown, wantTc] of [
    ['UDP 512, no EDNS: truncated to what fits', {}, 0, false, 29, true],
    ['EDNS 1232: truncated to what fits', { edns: 1232 }, 0, false, 73, true],
    ['TCP: every record', {}, 0, true, 100, false],
    ['maxAnswers 7 over UDP: capped, not truncated', {}, 7, false, 7, false],
    ['maxAnswers 150 over EDNS 1232: truncated below the cap', { edns: 1232 }, 150, false, 73, true],
  ] as const) {
    it(`§3.5 §3.6 §4.2 round-robin A from the cache, ${label}: ${wantShown} records in order, each first in turn`, () => {
      const store = new Store();
      const addrs = Array.from({ length: 100 }, (_, i) => `10.9.${i >> 8}.${(i & 255) + 1}`);
      put(store, 'b', [svc('big', addrs.map((a) => inst(a, [80])))]);
      const answer = { domains: ['sd.internal'], ttlSeconds: 5, negativeTtlSeconds: 5, order: 'round-robin' as const, maxAnswers, emptyService: 'nodata' as const };
      const answerer = new Answerer(store, answer);
      const counting = countingResponder(answerer);
      const p = new QueryProcessor({ responder: counting.responder, maxUdpPayloadBytes: 1232, order: 'round-robin' });
      const windows: string[][] = [];
      for (let i = 0; i < 2 * addrs.length; i++) {
        const msg = buildQuery('Big.Service.sd.internal', 'A', { id: i, ...opts });
        const raw = p.process(msg, msg.length, tcp)!;
        const r = decode(raw);
        assert.equal(r.id, i);
        assert.equal(r.questions![0]!.name, 'Big.Service.sd.internal', 'the client spelling');
        assert.equal(r.flag_tc, wantTc, 'TC only when the size limit cut records');
        assert.ok(r.answers!.every((a) => a.name === 'Big.Service.sd.internal' && a.type === 'A'));
        if (!tcp) assert.ok(raw.length <= (opts.edns ?? 512), `${raw.length} bytes over UDP`);
        assert.equal((r.additionals ?? []).some((a) => a.type === 'OPT'), 'edns' in opts);
        windows.push(r.answers!.map((a) => String(a.data)));
      }
      // Round-robin: response i starts at record i of one cyclic order, which the first responses spell out.
      const firsts = windows.map((w) => w[0]!);
      const order = firsts.slice(0, addrs.length);
      assert.deepEqual([...order].sort(), [...addrs].sort(), 'every record first once per cycle (§3.5)');
      windows.forEach((w, i) => {
        const want = Array.from({ length: wantShown }, (_, k) => order[(i + k) % order.length]!);
        assert.deepEqual(w, want, `response ${i}: ${wantShown} whole records in rotation order, wrapping around`);
      });
      assert.equal(counting.plans, 1, `${counting.plans} plans: one miss, then served from the cache`);
    });
  }
});

describe('answer cache across changes (§6.4)', () => {
  it('§6.4 a change to one service among 3000 drops exactly what it touched: every cached name answers as if fresh', () => {
    const D = 'sd.internal';
    const store = new Store();
    const N = 3000;
    const addr = (i: number, host: number) => `10.${i >> 8}.${i & 255}.${host}`;
    const make = (i: number) => svc(`svc-${i}`, [inst(addr(i, 1), ['http:80'], { tags: ['blue'] }), inst(addr(i, 2), ['http:80'])]);
    const services = Array.from({ length: N }, (_, i) => make(i));
    put(store, 'b', services);
    const answerer = new Answerer(store, { domains: [D], ttlSeconds: 5, negativeTtlSeconds: 5, order: 'fixed', maxAnswers: 0, emptyService: 'nodata' });
    const counting = countingResponder(answerer);
    const cached = new QueryProcessor({ responder: counting.responder, maxUdpPayloadBytes: 1232, order: 'fixed' });

    // Every kind of name: positive, NODATA, SRV with glue, tags known and unknown (NXDOMAIN), .addr names, names
    // that do not exist yet, empty non-terminals and the apex (SOA serial).
    const questions: [string, string][] = [];
    for (let i = 0; i < N; i++) {
      const s = `svc-${i}.service.${D}`;
      questions.push([s, 'A'], [s, 'AAAA'], [`_http._tcp.${s}`, 'SRV'], [`blue.${s}`, 'A'], [`red.${s}`, 'A']);
      questions.push([`${addr(i, 1).replaceAll('.', '-')}.addr.${D}`, 'A']);
      if (i % 10 === 0) questions.push([`gone-${i}.service.${D}`, 'A']);
    }
    questions.push([`service.${D}`, 'A'], [`_tcp.service.${D}`, 'SRV'], [`_blue.service.${D}`, 'SRV'], [`_red.service.${D}`, 'SRV']);
    questions.push([D, 'SOA'], [D, 'NS'], [`10-200-0-1.addr.${D}`, 'A']);
    const msgs = questions.map(([name, type], i) => buildQuery(name, type, { id: i & 0xffff }));
    for (const m of msgs) cached.process(m, m.length, false);
    counting.plans = 0;
    for (const m of msgs) cached.process(m, m.length, false);
    assert.equal(counting.plans, 0, 'all cached before the change');

    // Two generations of change before the next query: svc-7 loses an instance and its tag and gains another
    // address and a tag; svc-9 is removed; then gone-10 appears.
    const changed = services.slice();
    changed[7] = svc('svc-7', [inst(addr(7, 1), ['http:80'], { tags: ['red'] }), inst('10.200.0.1', ['http:81'])]);
    changed.splice(9, 1);
    put(store, 'b', changed);
    put(store, 'b', [...changed, svc('gone-10', [inst('10.201.0.1', [80])])]);

    const fresh = new QueryProcessor({ responder: answerer, maxUdpPayloadBytes: 1232, order: 'fixed' });
    counting.plans = 0;
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      const got = cached.process(m, m.length, false)!;
      const want = fresh.process(m, m.length, false)!;
      assert.deepEqual(got, want, `${questions[i]!.join(' ')}: the cached answer differs from a fresh one`);
    }
    // What the change touched: svc-7's and svc-9's names, gone-10, the .addr names whose address came or went,
    // and `_red.service.D`; everything else (some 18,000 answers) stayed cached.
    assert.ok(counting.plans > 0 && counting.plans < 40, `${counting.plans} of ${msgs.length} cached names were recomputed`);
  });
});

// Unit: the encoded-answer cache (architecture rule 3) — keyed by a 32-bit hash of the name, so a hash collision
// must be a miss, never another name's answer; the ID, RD/CD and the client's spelling are patched per query.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Plan, Responder } from '../../src/dns/plan.ts';
import { QueryProcessor } from '../../src/dns/processor.ts';
import { buildQuery, decode } from '../helpers/dns-client.ts';

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
  calls = 0;
  readonly #ids = new Map<string, number>();
  plan(qname: string): Plan {
    this.calls++;
    // A distinct address per name, so serving one name's cached answer for another is visible.
    if (!this.#ids.has(qname)) this.#ids.set(qname, this.#ids.size + 1);
    const address = `10.0.0.${this.#ids.get(qname)!}`;
    return { rcode: 0, aa: true, answers: [{ name: qname, type: 1, ttl: 5, address }], authority: [], additional: [], order: 'fixed', maxAnswers: 0 };
  }
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
});

// Truncation meets ordering and maxAnswers (dns-behaviour.md §3.5, §3.6, §4.2), over real UDP and TCP: a cap
// that leaves a response that fits sets no TC, a truncated answer is packed as tightly as the limit allows
// (compression included), and every record gets its turn, first for A/AAAA and in some response for SRV.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, query, udpRaw, buildQuery, type Decoded } from '../helpers/dns-client.ts';
import { inst, put, startStack, svc, type Stack } from '../helpers/stack.ts';
import type { Order } from '../../src/dns/plan.ts';

const D = 'sd.internal';
const hundred = Array.from({ length: 100 }, (_, i) => inst(`10.4.${i >> 8}.${(i & 255) + 1}`, [80]));

async function withStack(opts: { order?: Order; maxAnswers?: number }, fn: (s: Stack) => Promise<void>): Promise<void> {
  const s = await startStack({ answer: { order: opts.order ?? 'random', maxAnswers: opts.maxAnswers ?? 0 } });
  try {
    await fn(s);
  } finally {
    await s.stop();
  }
}

const srvTargets = (r: Decoded) => (r.answers ?? []).filter((a) => a.type === 'SRV').map((a) => String(a.data.target));
const glueNames = (r: Decoded) => (r.additionals ?? []).filter((a) => a.type === 'A' || a.type === 'AAAA').map((a) => a.name);

/** Wire length of a name written out in full (labels and the root octet). */
const wireLength = (name: string) => name.length + 2;

describe('maxAnswers and truncation (§3.6, §4.2)', () => {
  it('§3.6 §4.2 a cap that leaves a fitting response sets no TC: 100 A records, maxAnswers 2, 512 bytes → 2 records, TC=0', async () => {
    await withStack({ maxAnswers: 2 }, async (s) => {
      put(s.store, 'b', [svc('big', hundred)]);
      for (const opts of [{}, { edns: 1232 }, { tcp: true }]) {
        for (let i = 0; i < 5; i++) {
          const r = await query(s.port, `big.service.${D}`, 'A', opts);
          assert.equal(r.answers!.length, 2, JSON.stringify(opts));
          assert.equal(r.flag_tc, false, `${JSON.stringify(opts)}: the capped answer fits, so no TC`);
        }
      }
    });
  });

  it('§3.6 §4.2 a cap larger than what fits still truncates, with TC=1 and whole records', async () => {
    await withStack({ maxAnswers: 40 }, async (s) => {
      put(s.store, 'b', [svc('big', hundred)]);
      const r = await query(s.port, `big.service.${D}`, 'A'); // 40 × 16 bytes do not fit in 512
      assert.equal(r.flag_tc, true);
      assert.ok(r.answers!.length > 0 && r.answers!.length < 40, `${r.answers!.length}`);
      assert.ok(r.raw.length <= 512);
      const tcp = await query(s.port, `big.service.${D}`, 'A', { tcp: true });
      assert.equal(tcp.answers!.length, 40);
      assert.equal(tcp.flag_tc, false);
    });
  });

  for (const order of ['round-robin', 'random'] as const) {
    it(`§3.5 §4.2 a truncated UDP answer gives every record its turn first (${order}), not only those that fit`, async () => {
      await withStack({ order }, async (s) => {
        put(s.store, 'b', [svc('big', hundred)]);
        const first = new Set<string>();
        // round-robin: 100 responses put each record first once; random: 2000 responses miss one with p ≈ 2e-7.
        const tries = order === 'round-robin' ? 100 : 2000;
        for (let i = 0; i < tries && first.size < 100; i++) {
          const raw = await udpRaw(s.port, buildQuery(`big.service.${D}`, 'A'));
          assert.ok(raw, 'a reply');
          const r = decode(raw);
          assert.equal(r.flag_tc, true);
          assert.ok(raw.length <= 512);
          first.add(String(r.answers![0]!.data));
        }
        assert.equal(first.size, 100, `${first.size} of 100 records ever came first`);
      });
    });
  }

  it('§4.2 a truncated SRV answer fills the limit: one more SRV record with its glue would not fit, compression included', async () => {
    const many = Array.from({ length: 150 }, (_, i) => inst(`10.2.0.${i + 1}`, [80]));
    const allTargets = many.map((m) => `${m.address.replaceAll('.', '-')}.addr.${D}`);
    const s = await startStack({ maxUdpPayloadBytes: 4096 });
    try {
      put(s.store, 'b', [svc('big', many)]);
      for (const size of [512, 1232, 4096]) {
        const r = await query(s.port, `big.service.${D}`, 'SRV', size === 512 ? {} : { edns: size });
        assert.equal(r.flag_tc, true);
        assert.ok(r.raw.length <= size, `size ${size}: ${r.raw.length} bytes`);
        const sent = srvTargets(r);
        assert.deepEqual(new Set(glueNames(r)), new Set(sent), `size ${size}: glue for exactly the targets sent`);
        // What the next record costs at least, with the longest target it could have: an owner compressed to
        // 2 bytes, 10 fixed bytes, 6 of SRV rdata, the target written out (RFC 2782 forbids compressing it), and
        // its A glue with a compressed owner (2 + 10 + 4). Records are dropped from the end, so the next one in
        // order, whichever it is, must not have fitted.
        const unsent = allTargets.filter((t) => !sent.includes(t));
        const next = 2 + 10 + 6 + Math.max(...unsent.map(wireLength)) + (2 + 10 + 4);
        assert.ok(r.raw.length + next > size, `size ${size}: ${sent.length} SRV in ${r.raw.length} bytes leave room for another (${next} bytes)`);
      }
    } finally {
      await s.stop();
    }
  });

  for (const order of ['round-robin', 'random'] as const) {
    it(`§3.5 §4.2 truncated SRV answers (${order}) cover every record across responses`, async () => {
      const many = Array.from({ length: 60 }, (_, i) => inst(`10.2.0.${i + 1}`, [80]));
      await withStack({ order }, async (s) => {
        put(s.store, 'b', [svc('big', many)]);
        const seen = new Set<string>();
        for (let i = 0; i < 500 && seen.size < 60; i++) {
          const r = await query(s.port, `big.service.${D}`, 'SRV');
          assert.equal(r.flag_tc, true);
          for (const t of srvTargets(r)) seen.add(t);
        }
        assert.equal(seen.size, 60, `${seen.size} of 60 SRV records were ever sent over UDP`);
      });
    });
  }

  it('§3.6 maxAnswers applies to SRV (BIND ≥ 9.18.28 max-records-per-type): 150 instances, maxAnswers 100', async () => {
    const many = Array.from({ length: 150 }, (_, i) => inst(`10.5.${i >> 8}.${(i & 255) + 1}`, [80]));
    for (const order of ['round-robin', 'random'] as const) {
      await withStack({ order, maxAnswers: 100 }, async (s) => {
        put(s.store, 'b', [svc('big', many)]);
        const seen = new Set<string>();
        for (let i = 0; i < 200 && seen.size < 150; i++) {
          const r = await query(s.port, `big.service.${D}`, 'SRV', { tcp: true });
          assert.equal(r.flag_tc, false);
          assert.equal(r.answers!.length, 100, `${order}: capped at 100`);
          assert.deepEqual(new Set(glueNames(r)), new Set(srvTargets(r)), `${order}: glue for exactly the targets sent`);
          for (const t of srvTargets(r)) seen.add(t);
        }
        assert.equal(seen.size, 150, `${order}: every instance is served in some response (${seen.size} of 150)`);
        // Over UDP the 100 still do not fit 1232 bytes: truncated, TC=1, glue consistent.
        const udp = await query(s.port, `big.service.${D}`, 'SRV', { edns: 1232 });
        assert.equal(udp.flag_tc, true);
        assert.ok(udp.answers!.length < 100);
        assert.deepEqual(new Set(glueNames(udp)), new Set(srvTargets(udp)));
      });
    }
  });

  it('§3.6 a small SRV cap that fits UDP sets no TC: maxAnswers 2 → 2 SRV records with their glue, TC=0', async () => {
    await withStack({ maxAnswers: 2 }, async (s) => {
      put(s.store, 'b', [svc('big', hundred)]);
      const r = await query(s.port, `big.service.${D}`, 'SRV');
      assert.equal(r.flag_tc, false);
      assert.equal(r.answers!.length, 2);
      assert.deepEqual(new Set(glueNames(r)), new Set(srvTargets(r)));
    });
  });
});

describe('SRV order (§3.5)', () => {
  for (const order of ['round-robin', 'random'] as const) {
    for (const tcp of [true, false]) {
      const how = tcp ? 'over TCP' : 'over UDP, truncated to 512 bytes';
      it(`§3.5 §4.2 every SRV record comes first in turn ${how} (${order}), and each response's glue matches its targets`, async () => {
        const forty = Array.from({ length: 40 }, (_, i) => inst(`10.7.0.${i + 1}`, ['http:8080']));
        await withStack({ order }, async (s) => {
          put(s.store, 'b', [svc('web', forty)]);
          const first = new Set<string>();
          // round-robin: 40 responses put each record first once; random: 1500 miss one with p ≈ 1e-15.
          const tries = order === 'round-robin' ? 40 : 1500;
          for (let i = 0; i < tries && first.size < 40; i++) {
            const r = await query(s.port, `_http._tcp.web.service.${D}`, 'SRV', { tcp });
            assert.equal(r.flag_tc, !tcp);
            const targets = srvTargets(r);
            if (tcp) assert.equal(new Set(targets).size, 40);
            else assert.ok(r.raw.length <= 512 && targets.length > 0 && targets.length < 40, `${targets.length} records in ${r.raw.length} bytes`);
            // The glue owner is a compression pointer into an SRV target: each must name the right address.
            const glue = (r.additionals ?? []).filter((a) => a.type === 'A');
            assert.deepEqual(new Set(glue.map((g) => g.name)), new Set(targets));
            for (const g of glue) assert.equal(`${String(g.data).replaceAll('.', '-')}.addr.${D}`, g.name);
            first.add(targets[0]!);
          }
          assert.equal(first.size, 40, `${first.size} of 40 SRV records ever came first`);
        });
      });
    }
  }
});

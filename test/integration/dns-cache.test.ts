// The encoded-answer cache across data changes, over real UDP (dns-behaviour.md §6.4, §1.3): a change drops
// exactly the names it touched, so every answer after it matches the new data, the SOA serial in a negative
// answer that stayed cached is the new one, and the names the change did not touch are still cache hits.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { inst, put, startStack, svc } from '../helpers/stack.ts';
import type { DnsMetrics } from '../../src/dns/processor.ts';

const D = 'sd.internal';

describe('answer cache across changes (§6.4)', () => {
  it('§6.4 §1.3 after one service of 1000 changes, every name answers the new data; the rest stay cached, with the new SOA serial', async () => {
    let hits = 0;
    let misses = 0;
    const metrics: DnsMetrics = { response() {}, cache: (hit) => (hit ? hits++ : misses++), internalError() {} };
    const s = await startStack({ answer: { order: 'fixed' }, metrics });
    try {
      const N = 1000;
      const ip = (i: number, h: number) => `10.${i >> 8}.${i & 255}.${h}`;
      const services = Array.from({ length: N }, (_, i) => svc(`svc-${i}`, [inst(ip(i, 1), ['http:80']), inst(ip(i, 2), ['http:80'])]));
      put(s.store, 'b', services);
      /** What each name must answer, from the data alone. */
      const expected = (data: typeof services) => {
        const m = new Map<string, { rcode: string; data: string[] }>();
        const byName = new Map(data.map((x) => [x.name, x]));
        for (let i = 0; i < N; i++) {
          const one = byName.get(`svc-${i}`);
          const addrs = one ? one.instances.map((x) => x.address).sort() : [];
          m.set(`svc-${i}.service.${D} A`, { rcode: one ? 'NOERROR' : 'NXDOMAIN', data: addrs });
          const a1 = ip(i, 1);
          const has = data.some((x) => x.instances.some((y) => y.address === a1));
          m.set(`${a1.replaceAll('.', '-')}.addr.${D} A`, { rcode: has ? 'NOERROR' : 'NXDOMAIN', data: has ? [a1] : [] });
        }
        for (let i = 0; i < N; i += 50) {
          const one = byName.get(`new-${i}`);
          m.set(`new-${i}.service.${D} A`, { rcode: one ? 'NOERROR' : 'NXDOMAIN', data: one ? one.instances.map((x) => x.address).sort() : [] });
        }
        return m;
      };
      const check = async (want: Map<string, { rcode: string; data: string[] }>) => {
        const serials = new Set<number>();
        for (const [q, w] of want) {
          const [name, type] = q.split(' ');
          const r = await query(s.port, name!, type!);
          assert.equal(rcode(r), w.rcode, q);
          assert.deepEqual(answerData(r, 'A'), w.data, q);
          for (const a of r.authorities ?? []) if (a.type === 'SOA') serials.add((a.data as { serial: number }).serial);
        }
        return serials;
      };
      const before = expected(services);
      await check(before);
      await check(before); // now every name is cached
      hits = 0;
      misses = 0;

      // One service changes (an address replaced), one is removed, one appears.
      const changed = services.slice();
      changed[7] = svc('svc-7', [inst(ip(7, 1), ['http:80']), inst('10.250.0.7', ['http:80'])]);
      changed.splice(9, 1);
      changed.push(svc('new-100', [inst('10.251.0.1', [80])]));
      put(s.store, 'b', changed);
      const serialNow = s.store.serial;

      const serials = await check(expected(changed));
      assert.deepEqual([...serials], [serialNow], 'every NXDOMAIN carries the serial of the data now (§1.3)');
      assert.ok(misses > 0 && misses <= 10, `${misses} misses, ${hits} hits: only the names the change touched were recomputed`);
    } finally {
      await s.stop();
    }
  });
});

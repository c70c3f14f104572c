// Integration: a burst of UDP queries sent back to back, without waiting for answers, to a real listening server
// (the answers leave per burst, src/dns/server.ts UdpReplies). Every answer must carry its own query's ID,
// question and records: an answer buffer shared between two queries of one burst would show up here as a
// wrong ID or a wrong address. Misses and cache hits, A and SRV, are mixed; three bursts in a row; in fixed order
// and in round-robin order (whose answers are rotated copies of the cached one).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import { HANG_DEADLINE_MS } from '../helpers/deadline.ts';
import { buildQuery, decode, type Decoded } from '../helpers/dns-client.ts';
import { inst, put, startStack, svc } from '../helpers/stack.ts';

const SERVICES = 40;

describe('UDP bursts: every answer of a burst is its own query\'s (§4.1)', () => {
  for (const order of ['fixed', 'round-robin'] as const) it(`order ${order}: 120 queries in flight at once over 3 bursts: IDs, names and addresses all match`, async () => {
    const stack = await startStack({ answer: { order } });
    const client = dgram.createSocket('udp4');
    try {
      put(stack.store, 'test', Array.from({ length: SERVICES }, (_, k) => svc(`s${k}`, [inst(`10.9.${k}.1`, [8000 + k]), inst(`10.9.${k}.2`, [8000 + k])])));
      await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
      const asked = new Map<number, { name: string; type: string; k: number }>();
      const got = new Map<number, Decoded>();
      let allAnswered = (): void => {};
      const answered = new Promise<void>((resolve) => (allAnswered = resolve));
      client.on('message', (m) => {
        const d = decode(m);
        got.set(d.id!, d);
        if (got.size === asked.size) allAnswered();
      });
      let id = 1;
      for (let burst = 0; burst < 3; burst++) {
        // Every name once per burst, as A or SRV: the first burst's are misses, later ones mostly hits.
        for (let i = 0; i < 40; i++) {
          const k = (i * 7 + burst * 3) % SERVICES;
          const type = i % 4 === 3 ? 'SRV' : 'A';
          const name = `s${k}.service.sd.internal`;
          asked.set(id, { name, type, k });
          client.send(buildQuery(name, type, { id }), stack.port, '127.0.0.1');
          id++;
        }
      }
      // The event is the last answer; the deadline only turns a hang into the failure below.
      let hang: NodeJS.Timeout | undefined;
      await Promise.race([answered, new Promise<void>((resolve) => (hang = setTimeout(resolve, HANG_DEADLINE_MS)))]);
      clearTimeout(hang);
      assert.equal(got.size, asked.size, 'an answer for every query');
      for (const [qid, q] of asked) {
        const d = got.get(qid)!;
        assert.equal(d.questions![0]!.name, q.name, `answer ${qid} carries its own question`);
        assert.equal(d.questions![0]!.type, q.type);
        if (q.type === 'A') {
          assert.deepEqual(d.answers!.map((a) => a.data).sort(), [`10.9.${q.k}.1`, `10.9.${q.k}.2`], `answer ${qid}: ${q.name}`);
        } else {
          const ports = new Set(d.answers!.map((a) => (a.data as { port: number }).port));
          assert.deepEqual([...ports], [8000 + q.k], `answer ${qid}: ${q.name}`);
        }
      }
    } finally {
      client.close();
      await stack.stop();
    }
  });
});

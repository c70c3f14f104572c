// test/unit/consul-watch: the pieces that bound the consul backend's load on the agent — the FIFO semaphore
// (slots, abort while queued) and the token bucket (burst 2, then one per interval; Consul blocking.mdx).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Semaphore, TokenBucket } from '../../src/backends/consul/watch.ts';

test('Semaphore: at most N holders, FIFO hand-over, release is idempotent', async () => {
  const sem = new Semaphore(2);
  const ctl = new AbortController();
  const r1 = (await sem.acquire(ctl.signal))!;
  const r2 = (await sem.acquire(ctl.signal))!;
  const order: number[] = [];
  const p3 = sem.acquire(ctl.signal).then((r) => (order.push(3), r));
  const p4 = sem.acquire(ctl.signal).then((r) => (order.push(4), r));
  assert.equal(sem.waiting, 2);
  r1();
  r1(); // a second release must not free a second slot
  const r3 = (await p3)!;
  assert.equal(sem.waiting, 1);
  r2();
  const r4 = (await p4)!;
  assert.deepEqual(order, [3, 4]);
  r3();
  r4();
  // Both slots free again: two immediate acquisitions.
  assert.ok(await sem.acquire(ctl.signal));
  assert.ok(await sem.acquire(ctl.signal));
  assert.equal(sem.waiting, 0);
});

test('Semaphore: an aborted waiter leaves the queue and gets null; later waiters still get slots', async () => {
  const sem = new Semaphore(1);
  const keep = new AbortController();
  const r1 = (await sem.acquire(keep.signal))!;
  const gone = new AbortController();
  const pGone = sem.acquire(gone.signal);
  const pNext = sem.acquire(keep.signal);
  gone.abort();
  assert.equal(await pGone, null);
  assert.equal(sem.waiting, 1);
  r1();
  assert.ok(await pNext);
  const dead = new AbortController();
  dead.abort();
  assert.equal(await sem.acquire(dead.signal), null);
});

test('Semaphore: acquireFirst is served before every queued waiter (index sweeps borrow slots between turns, issue 11 #5)', async () => {
  const sem = new Semaphore(1);
  const ctl = new AbortController();
  const r1 = (await sem.acquire(ctl.signal))!;
  const order: string[] = [];
  const queued = sem.acquire(ctl.signal).then((r) => (order.push('queued'), r));
  const first = sem.acquireFirst(ctl.signal).then((r) => (order.push('first'), r));
  assert.equal(sem.waiting, 2);
  r1();
  const rf = (await first)!;
  assert.deepEqual(order, ['first']);
  rf();
  (await queued)!();
  assert.deepEqual(order, ['first', 'queued']);
});

test('Semaphore: a withdrawn waiter is never granted; queued again it goes to the back, and holds one place only', () => {
  const sem = new Semaphore(1);
  const granted: string[] = [];
  const releases: (() => void)[] = [];
  const waiter = (name: string) => ({
    grant(release: (() => void) | null) {
      assert.ok(release, `${name} granted a permit`);
      granted.push(name);
      releases.push(release);
    },
  });
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(waiter) as [ReturnType<typeof waiter>, ReturnType<typeof waiter>, ReturnType<typeof waiter>, ReturnType<typeof waiter>];
  sem.wait(a); // takes the permit at once
  for (const w of [b, c, d]) sem.wait(w);
  assert.equal(sem.waiting, 3);
  assert.equal(sem.withdraw(c), true);
  assert.equal(sem.withdraw(c), false, 'not queued any more');
  assert.equal(sem.waiting, 2);
  sem.wait(c); // back in, behind d
  sem.wait(b); // queued again while queued: it moves behind c, one place only
  assert.equal(sem.waiting, 3);
  while (releases.length > 0) releases.shift()!();
  assert.deepEqual(granted, ['a', 'd', 'c', 'b']);
  assert.equal(sem.waiting, 0);
  assert.equal(sem.free, 1);
});

test('Semaphore: any mix of wait, withdraw and release grants in the order of a plain queue, across the ring growing and wrapping', () => {
  // The queue is a ring that grows from 16 entries; withdrawn waiters leave dead entries behind. A reference
  // model (an array, the order of live waiters) must agree with it on who is granted, in what order.
  // More waits than releases, so the queue (with its dead entries) keeps outgrowing the ring while its head moves.
  const op = fc.oneof(
    { arbitrary: fc.record({ k: fc.constant('wait' as const), w: fc.nat(39) }), weight: 4 },
    { arbitrary: fc.record({ k: fc.constant('withdraw' as const), w: fc.nat(39) }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('release' as const), w: fc.constant(0) }), weight: 3 },
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 3 }), fc.array(op, { minLength: 50, maxLength: 400 }), (permits, ops) => {
      const sem = new Semaphore(permits);
      const granted: number[] = [];
      const held: (() => void)[] = [];
      const waiters = Array.from({ length: 40 }, (_, i) => ({
        grant(release: (() => void) | null) {
          assert.ok(release);
          granted.push(i);
          held.push(release);
        },
      }));
      const model: number[] = [];
      const modelGranted: number[] = [];
      let modelFree = permits;
      let modelHeld = 0;
      for (const o of ops) {
        if (o.k === 'wait') {
          if (modelFree > 0) {
            modelFree--;
            modelHeld++;
            modelGranted.push(o.w);
          } else {
            const at = model.indexOf(o.w);
            if (at >= 0) model.splice(at, 1);
            model.push(o.w);
          }
          sem.wait(waiters[o.w]!);
        } else if (o.k === 'withdraw') {
          const at = model.indexOf(o.w);
          if (at >= 0) model.splice(at, 1);
          assert.equal(sem.withdraw(waiters[o.w]!), at >= 0);
        } else if (held.length > 0) {
          const next = model.shift();
          if (next === undefined) {
            modelFree++;
            modelHeld--;
          } else modelGranted.push(next);
          held.shift()!();
        }
        assert.deepEqual(granted, modelGranted);
        assert.equal(sem.waiting, model.length);
        assert.equal(sem.free, modelFree);
        assert.equal(held.length, modelHeld);
      }
    }),
    { numRuns: 300 },
  );
});

test('Semaphore: acquireFirst goes ahead of a queue that has wrapped round the ring and grown', async () => {
  const sem = new Semaphore(1);
  const ctl = new AbortController();
  let release = (await sem.acquire(ctl.signal))!;
  const order: string[] = [];
  const pending: Promise<void>[] = [];
  const queue = (name: string, first: boolean) =>
    pending.push((first ? sem.acquireFirst(ctl.signal) : sem.acquire(ctl.signal)).then((r) => {
      order.push(name);
      release = r!;
    }));
  // 10 at the back, 30 at the front: the head wraps below 0 and the ring grows twice.
  for (let i = 0; i < 10; i++) queue(`back${i}`, false);
  for (let i = 0; i < 30; i++) queue(`front${i}`, true);
  assert.equal(sem.waiting, 40);
  for (let i = 0; i < 40; i++) {
    const before = order.length;
    release();
    while (order.length === before) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(pending);
  const expected = [...Array.from({ length: 30 }, (_, i) => `front${29 - i}`), ...Array.from({ length: 10 }, (_, i) => `back${i}`)];
  assert.deepEqual(order, expected);
  release();
  assert.equal(sem.free, 1);
});

test('TokenBucket: burst of 2, then one token per interval (injected clock)', async () => {
  let now = 0;
  const b = new TokenBucket(2, 1000, () => now);
  const sig = new AbortController().signal;
  assert.equal(await b.take(sig), true);
  assert.equal(await b.take(sig), true);
  // Third take must wait; advance the clock while it sleeps (the sleep itself is real but ≤ 1000 ms).
  let done = false;
  const p = b.take(sig).then((v) => ((done = true), v));
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false);
  now = 1000;
  assert.equal(await p, true);
  now = 1500; // half a token: none available
  const ctl = new AbortController();
  const q = b.take(ctl.signal);
  ctl.abort();
  assert.equal(await q, false);
});

test('TokenBucket: interval 0 means no limit', async () => {
  const b = new TokenBucket(2, 0, () => 0);
  const sig = new AbortController().signal;
  for (let i = 0; i < 100; i++) assert.equal(await b.take(sig), true);
});

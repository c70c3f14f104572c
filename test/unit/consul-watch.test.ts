// test/unit/consul-watch: the pieces that bound the consul backend's load on the agent — the FIFO semaphore
// (slots, abort while queued) and the token bucket (burst 2, then one per interval; Consul blocking.mdx).

import { test } from 'node:test';
import assert from 'node:assert/strict';
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

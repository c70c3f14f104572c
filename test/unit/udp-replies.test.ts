// Unit: UdpReplies (src/dns/server.ts), the answers to one burst of datagrams sent together after it. Driven
// with a recording sender; every wait is for the event loop's own check phase (setImmediate), never a time.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextCheck } from 'node:timers/promises';
import { UDP_BATCH_MAX, UdpReplies, type DatagramSender } from '../../src/dns/server.ts';

class Recorder implements DatagramSender {
  readonly sent: [string, number, string][] = [];
  throwOn: string | null = null;
  send(msg: Buffer, port: number, address: string): void {
    const text = msg.toString();
    if (text === this.throwOn) throw new Error('ERR_SOCKET_DGRAM_NOT_RUNNING');
    this.sent.push([text, port, address]);
  }
}

const b = (s: string) => Buffer.from(s);

describe('UdpReplies (UDP answers sent per burst)', () => {
  it('holds the answers of one turn and sends them all, in order, in the check phase after it', async () => {
    const rec = new Recorder();
    const r = new UdpReplies(rec);
    r.push(b('one'), 5301, '127.0.0.1');
    r.push(b('two'), 5302, '::1');
    r.push(b('three'), 5301, '127.0.0.1');
    assert.equal(rec.sent.length, 0, 'nothing leaves inside the burst');
    // Node runs the nextTick and microtask queues after each 'message' event: a flush there would send every
    // answer between two reads again. Only the check phase may send.
    await Promise.resolve();
    await new Promise<void>((resolve) => process.nextTick(resolve));
    assert.equal(rec.sent.length, 0, 'nothing leaves at a microtask or nextTick');
    assert.equal(r.held, 3);
    await nextCheck();
    assert.deepEqual(rec.sent, [
      ['one', 5301, '127.0.0.1'],
      ['two', 5302, '::1'],
      ['three', 5301, '127.0.0.1'],
    ]);
    assert.equal(r.held, 0);
    // A later burst is scheduled afresh.
    r.push(b('four'), 5303, '127.0.0.1');
    await nextCheck();
    assert.deepEqual(rec.sent.at(-1), ['four', 5303, '127.0.0.1']);
  });

  it(`a burst longer than ${UDP_BATCH_MAX} sends each full batch at once and the rest after the turn`, async () => {
    const rec = new Recorder();
    const r = new UdpReplies(rec);
    for (let i = 0; i < UDP_BATCH_MAX; i++) r.push(b(`a${i}`), 1000 + i, '127.0.0.1');
    assert.equal(rec.sent.length, UDP_BATCH_MAX, 'the full batch left without waiting');
    r.push(b('last'), 999, '127.0.0.1');
    assert.equal(rec.sent.length, UDP_BATCH_MAX);
    await nextCheck();
    assert.equal(rec.sent.length, UDP_BATCH_MAX + 1);
    assert.deepEqual(rec.sent.map((s) => s[0]), [...Array.from({ length: UDP_BATCH_MAX }, (_, i) => `a${i}`), 'last']);
    assert.deepEqual(rec.sent.map((s) => s[1]).slice(0, 3), [1000, 1001, 1002]);
  });

  it('close() sends what is held at once and drops what comes after; the scheduled flush then sends nothing', async () => {
    const rec = new Recorder();
    const r = new UdpReplies(rec);
    r.push(b('held'), 53, '127.0.0.1');
    r.close();
    assert.deepEqual(rec.sent, [['held', 53, '127.0.0.1']]);
    r.push(b('late'), 53, '127.0.0.1');
    await nextCheck();
    assert.deepEqual(rec.sent, [['held', 53, '127.0.0.1']]);
  });

  it('an answer to source port 0 is dropped (it cannot be sent), the others of the burst still go', async () => {
    const rec = new Recorder();
    const errors: string[] = [];
    const r = new UdpReplies(rec, (err) => errors.push(err.message));
    r.push(b('a'), 0, '127.0.0.1');
    r.push(b('b'), 5300, '127.0.0.1');
    await nextCheck();
    assert.deepEqual(rec.sent, [['b', 5300, '127.0.0.1']]);
    assert.deepEqual(errors, []);
  });

  it('a send that throws is reported and the rest of the batch still goes', async () => {
    const rec = new Recorder();
    const errors: [string, string][] = [];
    const r = new UdpReplies(rec, (err, where) => errors.push([err.message, where]));
    rec.throwOn = 'bad';
    r.push(b('x'), 1, '127.0.0.1');
    r.push(b('bad'), 2, '127.0.0.1');
    r.push(b('y'), 3, '127.0.0.1');
    await nextCheck();
    assert.deepEqual(rec.sent.map((s) => s[0]), ['x', 'y']);
    assert.deepEqual(errors, [['ERR_SOCKET_DGRAM_NOT_RUNNING', 'udp']]);
  });
});

// Fuzz (bounded, issue 12 item 3): the whole query processor as startApp assembles it, on a realistic data
// set, for raw bytes, mutations of real dig/kdig queries and structured queries. For any bytes, process()
// drops (no header, or QR=1: §5.5) or returns one well-formed message (§5.7): it decodes with dns-packet, echoes
// the ID and the question (§1.4, §3.7), has QR=1, fits 512 / the EDNS size / 65535 (§4.2, §4.3), FORMERR when
// the query cannot be parsed (§5.5), never a throw or an internal SERVFAIL; UDP without TC=1 carries what TCP
// does; asked again with another ID and letter case (a cache hit), the same records with this ID and spelling. A sample of the same inputs then goes over real UDP and TCP to the listening server.
// The run is bounded by a number of inputs, never by time; `npm run fuzz` runs the long version.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { corpusInputs, mutatedInput, rawInput, structuredInput, type Input } from './arbitraries.ts';
import { judge, loadCorpus, startFuzzServer, viewQuery, type FuzzServer } from './harness.ts';
import { property, runs } from './property.ts';
import { processorTarget } from './targets.ts';
import { buildQuery, tcpRaw, udpDropped } from '../helpers/dns-client.ts';

const saved = (i: Input) => ({ target: 'processor', bytes: i.msg, tcp: i.tcp });

describe('fuzz: the query processor (§5.5, §5.7, §4.2, §1.4)', () => {
  let fuzz: FuzzServer;
  before(async () => {
    fuzz = await startFuzzServer();
  });
  after(async () => {
    await fuzz?.stop();
  });

  it('the oracle rejects broken responses (the properties can fail)', () => {
    const q = buildQuery('web.service.sd.internal', 'A', { id: 4242, edns: 1232 });
    const good = fuzz.processor.process(Buffer.from(q), q.length, false)!;
    assert.deepEqual(judge(q, false, good), []);
    const broken: [string, (b: Buffer) => Buffer | null][] = [
      ['dropped', () => null],
      ['ID', (b) => (b.writeUInt16BE(4243, 0), b)],
      ['QR', (b) => ((b[2]! &= 0x7f), b)],
      ['RD', (b) => ((b[2]! ^= 0x01), b)],
      ['question case', (b) => ((b[13]! ^= 0x20), b)],
      ['cut', (b) => b.subarray(0, b.length - 1)],
      ['trailing byte', (b) => Buffer.concat([b, Buffer.from([0])])],
      ['FORMERR', (b) => ((b[3]! = (b[3]! & 0xf0) | 1), b)],
      ['SERVFAIL', (b) => ((b[3]! = (b[3]! & 0xf0) | 2), b)],
    ];
    for (const [name, breakIt] of broken) assert.notDeepEqual(judge(q, false, breakIt(Buffer.from(good))), [], name);
    // Over the size limit: the big answer over TCP, judged as if it had come over UDP.
    const big = buildQuery('big.service.sd.internal', 'A', { id: 7 });
    const tcpAnswer = fuzz.processor.process(Buffer.from(big), big.length, true)!;
    assert.ok(tcpAnswer.length > 512);
    assert.notDeepEqual(judge(big, false, tcpAnswer), []);
    // A malformed query answered as if it were fine.
    const bad = Buffer.concat([q.subarray(0, q.length - 3)]);
    assert.notDeepEqual(judge(bad, false, good), []);
  });

  it('the seed corpus (real dig/kdig queries) is answered well over UDP and TCP', () => {
    const inputs = corpusInputs();
    assert.ok(inputs.length >= 40, `corpus has ${inputs.length / 2} queries`);
    for (const input of inputs) assert.deepEqual(processorTarget(fuzz.processor, input), [], input.msg.toString('hex'));
    // The corpus reaches the answer code: most of it is well formed.
    assert.ok(loadCorpus().filter((m) => viewQuery(m).wellFormed).length >= 20);
  });

  it('any bytes: dropped or one well-formed response', () => {
    property(rawInput, runs(6000), (i) => processorTarget(fuzz.processor, i), saved);
  });

  it('mutated dig/kdig queries: dropped, FORMERR or a well-formed answer', () => {
    property(mutatedInput(), runs(6000), (i) => processorTarget(fuzz.processor, i), saved);
  });

  it('structured queries (names, types, classes, EDNS, flags, 0x20 case): well-formed answers', () => {
    property(structuredInput, runs(5000), (i) => processorTarget(fuzz.processor, i), saved);
  });

  it('the same kinds of input over real UDP and TCP to the listening server', async () => {
    const inputs = [...fc.sample(structuredInput, { numRuns: runs(150), seed: 12 }), ...fc.sample(mutatedInput(), { numRuns: runs(150), seed: 13 })];
    const sentinel = buildQuery('web.service.sd.internal', 'A', { id: 1 });
    for (const input of inputs) {
      const msg = input.msg;
      if (msg.length === 0) continue;
      // UDP: whatever arrives before the sentinel's reply answered `msg` (nothing: dropped).
      const probe = msg.length >= 2 && msg.readUInt16BE(0) === 1 ? Buffer.from(sentinel).fill(0, 0, 1).fill(2, 1, 2) : sentinel;
      const replies = await udpDropped(fuzz.port, msg, probe);
      assert.ok(replies.length <= 1, `${replies.length} replies to one datagram: ${msg.toString('hex')}`);
      assert.deepEqual(judge(msg, false, replies[0] ?? null), [], `UDP ${msg.toString('hex')}`);
      // TCP: only messages that must be answered (a dropped one would leave nothing to wait for).
      const v = viewQuery(msg);
      if (!v.header || v.qr) continue;
      const [reply] = await tcpRaw(fuzz.port, [msg]);
      assert.ok(reply, `no TCP reply to ${msg.toString('hex')}`);
      assert.deepEqual(judge(msg, true, reply), [], `TCP ${msg.toString('hex')}`);
    }
  });
});

// Fuzz (bounded, issue 12 item 3): the wire parser (src/dns/wire.ts parseQuery) against an independent reader
// written from RFC 1035 §4.1 and RFC 6891 §6.1, and the encoder (src/dns/encode.ts encode) on random plans,
// decoded with dns-packet. Parser: never a throw, never a read past `len`, DROP/NOTIMP/FORMERR exactly as §5.5
// says, and the fields it reports (ID, name, type, class, EDNS size/version/DO) are the reader's. Encoder: at most
// the size limit (§4.2, §4.3); the answers sent are the plan's first ones, in order, TC=1 exactly when some are
// cut; the cut is maximal (one more answer would not fit); glue only for the SRV targets sent (§4.2).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeQuery, mutatedInput, rawInput, structuredInput, type Input } from './arbitraries.ts';
import { viewQuery } from './harness.ts';
import { property, runs } from './property.ts';
import { asciiLower, encodeCase, encoderTarget, parserTarget, saveEncodeCase } from './wire-targets.ts';

describe('fuzz: the wire parser and the encoder (§5.5, §4.2, §4.3)', () => {
  it('the reader and the checks can fail', () => {
    const msg = encodeQuery({ id: 9, flags: 0x0100, name: 'Web.service.sd.internal', type: 1, class: 1, edns: null, extra: [], extraIn: 'ar', optFirst: false });
    assert.deepEqual(parserTarget({ msg, tcp: false, tail: Buffer.alloc(0) }), []);
    // A parser that read the name without lowercasing it would be caught.
    assert.notEqual(asciiLower('Web'), 'Web');
    assert.equal(viewQuery(msg.subarray(0, msg.length - 1)).wellFormed, false);
  });

  it('parseQuery on any bytes, mutated dig/kdig queries and structured queries agrees with the independent reader', () => {
    const save = (i: Input) => ({ target: 'parser', bytes: i.msg, tcp: i.tcp });
    property(rawInput, runs(5000), parserTarget, save);
    property(mutatedInput(), runs(5000), parserTarget, save);
    property(structuredInput, runs(5000), parserTarget, save);
  });

  it('encode: within the limit, answers cut from the end with TC=1, the cut maximal, glue only for sent targets', () => {
    property(encodeCase, runs(300), encoderTarget, (c) => ({ target: 'encoder', bytes: saveEncodeCase(c), tcp: false }));
  });
});

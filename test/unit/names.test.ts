// Unit: address text forms and .addr labels (dns-behaviour.md §2.4).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addrLabel, addressFromLabel, canonicalAddress, canonicalIPv6, isLabel } from '../../src/model/names.ts';

describe('names', () => {
  it('RFC 5952 canonical IPv6', () => {
    assert.equal(canonicalIPv6('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
    assert.equal(canonicalIPv6('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'first longest run');
    assert.equal(canonicalIPv6('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1', 'a single zero group is not compressed');
    assert.equal(canonicalIPv6('::'), '::');
    assert.equal(canonicalIPv6('::ffff:10.0.0.1'), '::ffff:a00:1');
    assert.equal(canonicalIPv6('fd00:0::1:1'), 'fd00::1:1');
  });
  it('canonicalAddress rejects hostnames and keeps family', () => {
    assert.deepEqual(canonicalAddress('10.0.0.1'), { address: '10.0.0.1', family: 4 });
    assert.deepEqual(canonicalAddress('FD00::1'), { address: 'fd00::1', family: 6 });
    assert.equal(canonicalAddress('web-1.example.com'), null);
    assert.equal(canonicalAddress('10.0.0.300'), null);
  });
  it('§2.4 addr labels round-trip, and only the canonical spelling names an address', () => {
    for (const a of ['10.0.0.1', 'fd00::1:1', '2001:db8::1', '::1', '::', 'fd00::', '::ffff:a00:1', '1:2:3:4:5:6:7:8']) {
      const l = addrLabel(a);
      assert.ok(!l.includes('.') && !l.includes(':'));
      assert.equal(addressFromLabel(l)?.address, a);
    }
    assert.equal(addrLabel('2001:db8::1'), '2001-db8--1');
    assert.equal(addressFromLabel('2001-0db8--1'), null);
    assert.equal(addressFromLabel('10-0-0-999'), null);
    assert.equal(addressFromLabel('web'), null);
  });
  it('§2.4 RFC 952/1123: a target label never starts or ends with "-": zero groups at the edges are written out', () => {
    assert.equal(addrLabel('::1'), '0--1');
    assert.equal(addrLabel('fd00::'), 'fd00--0');
    assert.equal(addrLabel('::'), '0--0');
    assert.equal(addrLabel('::ffff:a00:1'), '0--ffff-a00-1');
    const host = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
    for (const a of ['::1', '::', 'fd00::', '1::', '::2:3', '2001:db8::', '0:1:2:3:4:5:6:7', '1:0:0:0:0:0:0:0']) {
      assert.match(addrLabel(canonicalIPv6(a)), host, a);
    }
  });
  it('§2.4 the old edge spellings (`--1`, `fd00--`, `--`) still name their address', () => {
    assert.deepEqual(addressFromLabel('--1'), { address: '::1', family: 6 });
    assert.deepEqual(addressFromLabel('fd00--'), { address: 'fd00::', family: 6 });
    assert.deepEqual(addressFromLabel('--'), { address: '::', family: 6 });
    assert.deepEqual(addressFromLabel('0--1'), { address: '::1', family: 6 });
    for (const l of ['0-0--1', '0--0-1', 'fd00-0--0', '-1', '1-', '0--1-']) assert.equal(addressFromLabel(l), null, l);
  });
  it('labels', () => {
    assert.ok(isLabel('web') && isLabel('_grpc') && isLabel('a-b') && isLabel('x'.repeat(63)));
    assert.ok(!isLabel('') && !isLabel('-a') && !isLabel('a.b') && !isLabel('x'.repeat(64)) && !isLabel('Web'));
  });
});

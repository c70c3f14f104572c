// PTR in the configured reverse zones (dns-behaviour.md §3.8, §1.2, §2.5, §5.4) over real UDP and TCP to a
// listening server.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { inst, put, startStack, svc, type Stack } from '../helpers/stack.ts';
import type { Instance } from '../../src/model/service.ts';
import { parseReverse, reverseName } from '../../src/model/names.ts';
import { configSchema } from '../../src/config/schema.ts';

const D = 'sd.internal';
const named = (name: string, i: Instance): Instance => ({ ...i, name });
const V6 = 'fd00::1:1';
const V6_PTR = '1.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa';

function data(s: Stack) {
  put(s.store, 'static', [
    svc('web', [named('web-1', inst('10.0.0.1', [8080])), inst('10.0.0.2', [8080])]),
    svc('api', [inst(V6, ['http:80'])]),
    svc('db', [inst('10.7.0.1', [5432])], { scope: 'staging' }), // only in a scope: `.addr.staging`
    svc('out', [inst('192.168.1.1', [80])]), // outside every reverse zone
  ]);
}

describe('PTR (§3.8)', () => {
  let s: Stack;
  before(async () => {
    s = await startStack({ answer: { reverseZones: ['10.in-addr.arpa', 'd.f.ip6.arpa'] } });
    data(s);
  });
  after(() => s.stop());

  it('§3.8 PTR names the instance, or its .addr name (unscoped view, else the scope); IPv6 by nibbles; UDP and TCP', async () => {
    for (const tcp of [false, true]) {
      const a = await query(s.port, '1.0.0.10.in-addr.arpa', 'PTR', { tcp });
      assert.equal(rcode(a), 'NOERROR');
      assert.equal(a.flag_aa, true);
      assert.deepEqual(answerData(a), [`web-1.web.service.${D}`]);
      assert.equal(a.answers![0]!.ttl, 5);
    }
    assert.deepEqual(answerData(await query(s.port, '2.0.0.10.in-addr.arpa', 'PTR')), [`10-0-0-2.addr.${D}`]);
    assert.deepEqual(answerData(await query(s.port, '1.0.7.10.in-addr.arpa', 'PTR')), [`10-7-0-1.addr.staging.${D}`]);
    assert.equal(reverseName(V6, 6), V6_PTR);
    assert.deepEqual(answerData(await query(s.port, V6_PTR, 'PTR')), [`fd00--1-1.addr.${D}`]);
    assert.deepEqual(answerData(await query(s.port, V6_PTR.toUpperCase(), 'ANY')), [`fd00--1-1.addr.${D}`]);
    const a = await query(s.port, '1.0.0.10.in-addr.arpa', 'A');
    assert.equal(rcode(a), 'NOERROR');
    assert.deepEqual(a.answers, []);
    assert.equal(a.authorities![0]!.name, '10.in-addr.arpa');
  });

  it('§3.8 §1.3 the reverse apex has SOA and NS naming the first domain\'s server', async () => {
    const soa = await query(s.port, '10.in-addr.arpa', 'SOA');
    const d = soa.answers![0]!.data as { mname: string; rname: string; minimum: number };
    assert.equal(d.mname, `ns.${D}`);
    assert.equal(d.rname, `hostmaster.${D}`);
    assert.equal(d.minimum, 5);
    assert.deepEqual(answerData(await query(s.port, 'd.f.ip6.arpa', 'NS')), [`ns.${D}`]);
  });

  it('§3.8 §5.1 an address in a reverse zone that no healthy instance has is NXDOMAIN with the zone SOA; so is a malformed name', async () => {
    for (const n of ['9.9.9.10.in-addr.arpa', '3.0.0.10.in-addr.arpa', '01.0.0.10.in-addr.arpa', '256.0.0.10.in-addr.arpa', 'x.1.0.0.10.in-addr.arpa', 'ab.d.f.ip6.arpa']) {
      const r = await query(s.port, n, 'PTR');
      assert.equal(rcode(r), 'NXDOMAIN', n);
      assert.equal(r.flag_aa, true);
      assert.equal(r.authorities![0]!.type, 'SOA', n);
    }
    assert.equal(rcode(await query(s.port, '9.10.in-addr.arpa', 'PTR')), 'NXDOMAIN');
  });

  it('§2.5 the intermediate names above a served address are empty non-terminals (NODATA)', async () => {
    for (const n of ['0.0.10.in-addr.arpa', '0.10.in-addr.arpa', '7.10.in-addr.arpa', V6_PTR.split('.').slice(16).join('.'), '0.0.d.f.ip6.arpa']) {
      const r = await query(s.port, n, 'PTR');
      assert.equal(rcode(r), 'NOERROR', n);
      assert.deepEqual(r.answers, [], n);
      assert.equal(r.authorities![0]!.type, 'SOA', n);
    }
  });

  it('§1.2 reverse names outside the configured zones stay REFUSED, also for a served address', async () => {
    for (const n of ['1.1.168.192.in-addr.arpa', 'in-addr.arpa', '1.0.0.127.in-addr.arpa', '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa']) {
      const r = await query(s.port, n, 'PTR');
      assert.equal(rcode(r), 'REFUSED', n);
      assert.equal(r.flag_aa, false);
    }
  });

  it('§3.8 §6.4 an address that goes away is NXDOMAIN in the next answer, and its empty non-terminals go with it', async () => {
    assert.equal(rcode(await query(s.port, '1.0.7.10.in-addr.arpa', 'PTR')), 'NOERROR');
    assert.equal(rcode(await query(s.port, '7.10.in-addr.arpa', 'PTR')), 'NOERROR');
    put(s.store, 'static', [svc('web', [named('web-1', inst('10.0.0.1', [8080])), inst('10.0.0.2', [8080])])]);
    try {
      assert.equal(rcode(await query(s.port, '1.0.7.10.in-addr.arpa', 'PTR')), 'NXDOMAIN');
      assert.equal(rcode(await query(s.port, '7.10.in-addr.arpa', 'PTR')), 'NXDOMAIN');
      assert.deepEqual(answerData(await query(s.port, '1.0.0.10.in-addr.arpa', 'PTR')), [`web-1.web.service.${D}`]);
    } finally {
      data(s);
    }
    assert.equal(rcode(await query(s.port, '1.0.7.10.in-addr.arpa', 'PTR')), 'NOERROR');
  });
});

describe('PTR edge cases (§3.8, §5.4, §1.2)', () => {
  it('§1.2 without reverseZones (the default) every reverse name is REFUSED', async () => {
    const s = await startStack();
    try {
      put(s.store, 'static', [svc('web', [named('web-1', inst('10.0.0.1', [8080]))])]);
      assert.equal(rcode(await query(s.port, '1.0.0.10.in-addr.arpa', 'PTR')), 'REFUSED');
    } finally {
      await s.stop();
    }
  });

  it('§5.4 an address missing while a backend has not synced is SERVFAIL, not NXDOMAIN; served ones still answer', async () => {
    const s = await startStack({ answer: { reverseZones: ['10.in-addr.arpa'] } });
    try {
      put(s.store, 'static', [svc('web', [named('web-1', inst('10.0.0.1', [8080]))])]);
      s.store.register('late', 'test', () => true);
      assert.equal(rcode(await query(s.port, '9.0.0.10.in-addr.arpa', 'PTR')), 'SERVFAIL');
      assert.deepEqual(answerData(await query(s.port, '1.0.0.10.in-addr.arpa', 'PTR')), [`web-1.web.service.${D}`]);
      put(s.store, 'late', []);
      assert.equal(rcode(await query(s.port, '9.0.0.10.in-addr.arpa', 'PTR')), 'NXDOMAIN');
    } finally {
      await s.stop();
    }
  });

  it('§3.8 one PTR per instance: a default-scope instance gets its unscoped name only (not also .default); instances in other scopes add theirs', async () => {
    const s = await startStack({ answer: { reverseZones: ['10.in-addr.arpa'] } });
    try {
      put(s.store, 'static', [svc('web', [named('web-1', inst('10.0.0.1', [8080]))]), svc('web', [named('web-1', inst('10.0.0.1', [8080]))], { scope: 'other' })]);
      assert.deepEqual(answerData(await query(s.port, '1.0.0.10.in-addr.arpa', 'PTR')), [`web-1.web.service.other.${D}`, `web-1.web.service.${D}`]);
      put(s.store, 'static', [svc('web', [named('web-1', inst('10.0.0.1', [8080]))])]);
      assert.deepEqual(answerData(await query(s.port, '1.0.0.10.in-addr.arpa', 'PTR')), [`web-1.web.service.${D}`]);
    } finally {
      await s.stop();
    }
  });

  it('§3.8 §2.6 §6.4 a tag that starts shadowing an instance name turns its cached PTR into the .addr name at once', async () => {
    const s = await startStack({ answer: { reverseZones: ['10.in-addr.arpa'], order: 'fixed' } });
    try {
      const blue = named('blue', inst('10.0.0.1', [8080]));
      const other = inst('10.0.0.2', [8080]);
      put(s.store, 'static', [svc('web', [blue, other])]);
      for (let i = 0; i < 2; i++) assert.deepEqual(answerData(await query(s.port, '1.0.0.10.in-addr.arpa', 'PTR')), [`blue.web.service.${D}`]);
      // Only the tag set changes (an unhealthy instance carries `blue` now): same instance objects, same addresses.
      put(s.store, 'static', [{ ...svc('web', [blue, other]), knownTags: ['blue'] }]);
      assert.deepEqual(answerData(await query(s.port, '1.0.0.10.in-addr.arpa', 'PTR')), [`10-0-0-1.addr.${D}`]);
    } finally {
      await s.stop();
    }
  });

  it('§3.8 reverseZones must sit on octet or nibble boundaries; names are parsed strictly', () => {
    const base = { backends: [{ type: 'file', path: 'x.yaml' }] };
    const ok = configSchema.parse({ ...base, reverseZones: ['10.IN-ADDR.ARPA.', '0.0.d.f.ip6.arpa', 'in-addr.arpa'] });
    assert.deepEqual(ok.reverseZones, ['10.in-addr.arpa', '0.0.d.f.ip6.arpa', 'in-addr.arpa']);
    for (const bad of ['10.0.0.0/8', '010.in-addr.arpa', 'fd.ip6.arpa', 'example.com', '1.0.0.10.in-addr.arpa']) {
      assert.equal(configSchema.safeParse({ ...base, reverseZones: [bad] }).success, false, bad);
    }
    assert.deepEqual(parseReverse('1.0.0.10.in-addr.arpa'), { valid: true, full: { address: '10.0.0.1', family: 4 } });
    assert.deepEqual(parseReverse(V6_PTR), { valid: true, full: { address: V6, family: 6 } });
    assert.deepEqual(parseReverse('0.10.in-addr.arpa'), { valid: true, full: null });
  });
});

// Conformance of answers (dns-behaviour.md §1–§3, §5.1–§5.4, §6.2–§6.3) over real UDP and TCP to a listening server.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { inst, put, startStack, svc, type Stack } from '../helpers/stack.ts';

const D = 'sd.internal';

function data(s: Stack) {
  put(s.store, 'static', [
    // `retired` is carried only by an unhealthy instance (not served, but registered: §2.2, §5.3).
    {
      ...svc('web', [inst('10.0.0.1', [8080], { tags: ['primary'] }), inst('10.0.0.2', [8080], { tags: ['canary'], weight: 5 })]),
      knownTags: ['primary', 'canary', 'retired'],
    },
    svc('api', [inst('10.0.1.1', ['http:80', 'grpc:9090']), inst('fd00::1:1', ['http:80', 'grpc:9090'])]),
    { ...svc('db', []), knownTags: ['replica'] },
    svc('v6only', [inst('2001:db8::1', [80])]),
    svc('dns', [inst('10.0.3.1', ['dns:53/udp', 'dns-tcp:53/tcp'])]),
    svc('slow', [inst('10.0.4.1', [80])], { ttlSeconds: 30 }),
    svc('web', [inst('10.1.0.1', [8080])], { scope: 'staging' }),
    svc('edge', [inst('::1', [80]), inst('fd00::', [81]), inst('::', [82])]),
  ]);
}

describe('answers over UDP (§1–§3, §5)', () => {
  let s: Stack;
  before(async () => {
    s = await startStack();
    data(s);
  });
  after(() => s.stop());

  it('§1.1 §1.3 apex SOA: ns/hostmaster, timers, minimum and TTL = negativeTtl, AA', async () => {
    const r = await query(s.port, D, 'SOA');
    assert.equal(rcode(r), 'NOERROR');
    assert.equal(r.flag_aa, true);
    const soa = r.answers![0]! as unknown as { type: string; ttl: number; data: Record<string, unknown> };
    assert.equal(soa.type, 'SOA');
    assert.equal(soa.ttl, 5);
    assert.equal(soa.data.mname, 'ns.sd.internal');
    assert.equal(soa.data.rname, 'hostmaster.sd.internal');
    assert.equal(soa.data.refresh, 3600);
    assert.equal(soa.data.retry, 600);
    assert.equal(soa.data.expire, 86400);
    assert.equal(soa.data.minimum, 5);
  });

  it('§1.3 the SOA serial grows when served data changes', async () => {
    const serial = async () => ((await query(s.port, D, 'SOA')).answers![0] as { data: { serial: number } }).data.serial;
    const a = await serial();
    put(s.store, 'other', [svc('extra', [inst('10.9.0.1', [1])])]);
    const b = await serial();
    assert.ok(b > a, `${b} > ${a}`);
  });

  it('§1.3 apex NS is ns.<domain>; NS and SOA below the apex are NODATA (§5.2)', async () => {
    const r = await query(s.port, D, 'NS');
    assert.deepEqual(answerData(r), ['ns.sd.internal']);
    for (const t of ['NS', 'SOA']) {
      const b = await query(s.port, `web.service.${D}`, t);
      assert.equal(rcode(b), 'NOERROR');
      assert.equal(b.answers!.length, 0);
      assert.equal(b.authorities![0]!.type, 'SOA');
    }
  });

  it('§1.2 out of zone is REFUSED, and RA is never set', async () => {
    const r = await query(s.port, 'example.com', 'A');
    assert.equal(rcode(r), 'REFUSED');
    assert.equal(r.flag_ra, false);
    assert.equal(r.flag_aa, false);
    const parent = await query(s.port, 'internal', 'A');
    assert.equal(rcode(parent), 'REFUSED');
    const ok = await query(s.port, `web.service.${D}`, 'A');
    assert.equal(ok.flag_ra, false);
  });

  it('§1.4 matching ignores case; the question and answer owners keep the client spelling, also from cache', async () => {
    for (const name of ['WeB.SeRvIcE.Sd.InTeRnAl', 'wEb.sErViCe.sD.iNtErNaL', 'WEB.SERVICE.SD.INTERNAL']) {
      const r = await query(s.port, name, 'A');
      assert.equal(r.questions![0]!.name, name);
      assert.deepEqual(answerData(r, 'A'), ['10.0.0.1', '10.0.0.2']);
      for (const a of r.answers!) assert.equal(a.name, name);
      // Byte for byte: the question as sent starts at offset 12.
      assert.ok(r.raw.includes(Buffer.from(name.split('.').map((l) => String.fromCharCode(l.length) + l).join(''), 'latin1')));
    }
  });

  it('§2.1 N.service.D answers the default scope; N.service.S.D the scope', async () => {
    assert.deepEqual(answerData(await query(s.port, `web.service.${D}`, 'A')), ['10.0.0.1', '10.0.0.2']);
    assert.deepEqual(answerData(await query(s.port, `web.service.staging.${D}`, 'A')), ['10.1.0.1']);
    assert.deepEqual(answerData(await query(s.port, `web.service.default.${D}`, 'A')), ['10.0.0.1', '10.0.0.2']);
  });

  it('§2.2 T.N.service.D filters by tag; a port name acts as a tag and selects the SRV port', async () => {
    assert.deepEqual(answerData(await query(s.port, `primary.web.service.${D}`, 'A')), ['10.0.0.1']);
    assert.deepEqual(answerData(await query(s.port, `canary.web.service.${D}`, 'A')), ['10.0.0.2']);
    const srv = await query(s.port, `http.api.service.${D}`, 'SRV');
    assert.deepEqual(answerData(srv), ['1 1 80 10-0-1-1.addr.sd.internal', '1 1 80 fd00--1-1.addr.sd.internal']);
  });

  it('§2.3a _N._T.service.D: T is a tag; _tcp/_udp mean no tag filter; A/AAAA are NODATA', async () => {
    const all = await query(s.port, `_web._tcp.service.${D}`, 'SRV');
    assert.deepEqual(answerData(all), ['1 1 8080 10-0-0-1.addr.sd.internal', '1 5 8080 10-0-0-2.addr.sd.internal']);
    const tagged = await query(s.port, `_web._primary.service.${D}`, 'SRV');
    assert.deepEqual(answerData(tagged), ['1 1 8080 10-0-0-1.addr.sd.internal']);
    const a = await query(s.port, `_web._tcp.service.${D}`, 'A');
    assert.equal(rcode(a), 'NOERROR');
    assert.equal(a.answers!.length, 0);
    assert.equal(a.authorities![0]!.type, 'SOA');
  });

  it('§2.3b _P._PROTO.N.service.D answers only the matching ports', async () => {
    assert.deepEqual(answerData(await query(s.port, `_grpc._tcp.api.service.${D}`, 'SRV')), [
      '1 1 9090 10-0-1-1.addr.sd.internal',
      '1 1 9090 fd00--1-1.addr.sd.internal',
    ]);
    assert.deepEqual(answerData(await query(s.port, `_dns._udp.dns.service.${D}`, 'SRV')), ['1 1 53 10-0-3-1.addr.sd.internal']);
    const wrongProto = await query(s.port, `_dns._tcp.dns.service.${D}`, 'SRV');
    assert.equal(rcode(wrongProto), 'NOERROR');
    assert.equal(wrongProto.answers!.length, 0);
    assert.deepEqual(answerData(await query(s.port, `_http._tcp.api.service.staging.${D}`, 'SRV')), []);
  });

  it('§2.4 .addr names answer while a healthy instance has the address, else NXDOMAIN', async () => {
    assert.deepEqual(answerData(await query(s.port, `10-0-0-1.addr.${D}`, 'A')), ['10.0.0.1']);
    assert.deepEqual(answerData(await query(s.port, `fd00--1-1.addr.${D}`, 'AAAA')), ['fd00::1:1']);
    assert.deepEqual(answerData(await query(s.port, `10-1-0-1.addr.staging.${D}`, 'A')), ['10.1.0.1']);
    assert.equal(rcode(await query(s.port, `10-9-9-9.addr.${D}`, 'A')), 'NXDOMAIN');
    assert.equal(rcode(await query(s.port, `10-1-0-1.addr.${D}`, 'A')), 'NXDOMAIN', 'a staging address is not in the unscoped view');
    const v6asA = await query(s.port, `fd00--1-1.addr.${D}`, 'A');
    assert.equal(rcode(v6asA), 'NOERROR');
    assert.equal(v6asA.answers!.length, 0);
  });

  it('§2.4 RFC 952/1123: every .addr target is a host name (zero groups at the edges written out); the old form answers too', async () => {
    const hostLabel = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
    const r = await query(s.port, `edge.service.${D}`, 'SRV');
    assert.deepEqual(answerData(r), ['1 1 80 0--1.addr.sd.internal', '1 1 81 fd00--0.addr.sd.internal', '1 1 82 0--0.addr.sd.internal']);
    const targets = r.answers!.map((a) => (a.data as { target: string }).target);
    for (const t of targets) for (const l of t.split('.')) assert.match(l, hostLabel, t);
    const glue = (r.additionals ?? []).filter((a) => a.type === 'AAAA').map((a) => `${a.name} ${String(a.data)}`).sort();
    assert.deepEqual(glue, ['0--0.addr.sd.internal ::', '0--1.addr.sd.internal ::1', 'fd00--0.addr.sd.internal fd00::']);
    // The target names answer, and so do the old spellings (`--1`, `fd00--`, `--`), each under its own owner name.
    for (const [name, address] of [
      ['0--1', '::1'], ['--1', '::1'], ['fd00--0', 'fd00::'], ['fd00--', 'fd00::'], ['0--0', '::'], ['--', '::'],
    ] as const) {
      const a = await query(s.port, `${name}.addr.${D}`, 'AAAA');
      assert.deepEqual(answerData(a), [address], name);
      assert.equal(a.answers![0]!.name, `${name}.addr.${D}`, `${name}: the owner is the name asked`);
    }
    // Other spellings of the same address are not target names.
    for (const name of ['0-0--1', '0--0-1', 'fd00-0--0']) assert.equal(rcode(await query(s.port, `${name}.addr.${D}`, 'AAAA')), 'NXDOMAIN', name);
  });

  it('§2.5 empty non-terminals answer NODATA for every type; unknown names NXDOMAIN (§5.1)', async () => {
    for (const name of [`service.${D}`, `staging.${D}`, `service.staging.${D}`]) {
      for (const t of ['A', 'TXT', 'SRV']) {
        const r = await query(s.port, name, t);
        assert.equal(rcode(r), 'NOERROR', `${name} ${t}`);
        assert.equal(r.answers!.length, 0);
        assert.equal(r.authorities![0]!.type, 'SOA');
      }
    }
    for (const name of [`nope.${D}`, `nope.service.${D}`, `web.service.nope.${D}`, `a.b.c.web.service.${D}`]) {
      const r = await query(s.port, name, 'A');
      assert.equal(rcode(r), 'NXDOMAIN', name);
      assert.equal(r.flag_aa, true);
      assert.equal(r.authorities![0]!.type, 'SOA');
      assert.equal(r.authorities![0]!.name, D);
    }
  });

  it('§2.5 RFC 8020: the intermediate labels of the RFC 2782 forms are empty non-terminals (NODATA for every type)', async () => {
    for (const name of [
      `_tcp.service.${D}`, `_udp.service.${D}`, `_primary.service.${D}`, `_retired.service.${D}`, `_tcp.service.staging.${D}`,
      `_tcp.api.service.${D}`, `_udp.dns.service.${D}`, `_tcp.web.service.staging.${D}`, `addr.${D}`, `addr.staging.${D}`,
    ]) {
      for (const t of ['A', 'AAAA', 'TXT', 'SRV', 'ANY']) {
        const r = await query(s.port, name, t);
        assert.equal(rcode(r), 'NOERROR', `${name} ${t}`);
        assert.equal(r.answers!.length, 0, `${name} ${t}`);
        assert.equal(r.authorities![0]!.type, 'SOA', `${name} ${t}`);
      }
    }
    // Nothing below these: NXDOMAIN.
    for (const name of [
      `_nosuchtag.service.${D}`, `_primary.service.staging.${D}`, `_tcp.service.nope.${D}`, `_tcp.nope.service.${D}`,
      `_tcp.api.service.staging.${D}`,
    ]) {
      assert.equal(rcode(await query(s.port, name, 'A')), 'NXDOMAIN', name);
    }
  });

  it('§2.5 RFC 8020: no ancestor of a name that has data is NXDOMAIN (what a QNAME-minimising resolver walks)', async () => {
    const names = [
      `_web._tcp.service.${D}`, `_web._primary.service.${D}`, `_http._tcp.api.service.${D}`, `_dns._udp.dns.service.${D}`,
      `_web._tcp.service.staging.${D}`, `primary.web.service.${D}`, `10-0-0-1.addr.${D}`, `10-1-0-1.addr.staging.${D}`,
      `0--1.addr.${D}`,
    ];
    for (const name of names) {
      const own = await query(s.port, name, 'SRV');
      const a = await query(s.port, name, 'ANY');
      assert.ok(own.answers!.length + a.answers!.length > 0, `${name} has data`);
      const labels = name.split('.');
      for (let i = 1; labels.length - i >= 2; i++) {
        const ancestor = labels.slice(i).join('.');
        for (const t of ['A', 'NS']) {
          const r = await query(s.port, ancestor, t);
          assert.equal(rcode(r), 'NOERROR', `${ancestor} ${t} (an ancestor of ${name})`);
        }
      }
    }
  });

  it('§2.2 a tag or port name no registered instance of N carries is NXDOMAIN; one carried only by unhealthy instances is NODATA (§5.3)', async () => {
    for (const [name, t] of [
      [`bogus.web.service.${D}`, 'A'], [`bogus.web.service.${D}`, 'SRV'], [`_web._bogus.service.${D}`, 'SRV'],
      [`_bogus._tcp.api.service.${D}`, 'SRV'], [`bogus.api.service.${D}`, 'A'], [`primary.web.service.staging.${D}`, 'A'],
      [`other.db.service.${D}`, 'A'],
    ] as const) {
      const r = await query(s.port, name, t);
      assert.equal(rcode(r), 'NXDOMAIN', `${name} ${t}`);
      assert.equal(r.authorities![0]!.type, 'SOA');
    }
    for (const [name, t] of [
      [`retired.web.service.${D}`, 'A'], [`_web._retired.service.${D}`, 'SRV'], [`replica.db.service.${D}`, 'A'],
      [`_dns._tcp.dns.service.${D}`, 'SRV'],
    ] as const) {
      const r = await query(s.port, name, t);
      assert.equal(rcode(r), 'NOERROR', `${name} ${t}`);
      assert.equal(r.answers!.length, 0, `${name} ${t}`);
      assert.equal(r.authorities![0]!.type, 'SOA');
    }
    // Port names act as tags (§2.2): a port name is a known tag.
    assert.deepEqual(answerData(await query(s.port, `grpc.api.service.${D}`, 'A')), ['10.0.1.1']);
  });

  it('§3.1 one A per distinct address even with several ports', async () => {
    assert.deepEqual(answerData(await query(s.port, `api.service.${D}`, 'A')), ['10.0.1.1']);
    assert.deepEqual(answerData(await query(s.port, `api.service.${D}`, 'AAAA')), ['fd00::1:1']);
  });

  it('§3.2 SRV: priority 1, instance weight, port, .addr target, glue for every target', async () => {
    const r = await query(s.port, `web.service.${D}`, 'SRV');
    assert.deepEqual(answerData(r), ['1 1 8080 10-0-0-1.addr.sd.internal', '1 5 8080 10-0-0-2.addr.sd.internal']);
    const glue = (r.additionals ?? []).filter((a) => a.type === 'A').map((a) => `${a.name} ${(a as { data: string }).data}`).sort();
    assert.deepEqual(glue, ['10-0-0-1.addr.sd.internal 10.0.0.1', '10-0-0-2.addr.sd.internal 10.0.0.2']);
    const v6 = await query(s.port, `api.service.${D}`, 'SRV');
    assert.equal(v6.answers!.length, 4);
    assert.deepEqual(
      (v6.additionals ?? []).filter((a) => a.type !== 'OPT').map((a) => a.type).sort(),
      ['A', 'AAAA'],
    );
  });

  it('§3.3 ANY answers the A and AAAA records', async () => {
    const r = await query(s.port, `api.service.${D}`, 'ANY');
    assert.deepEqual(r.answers!.map((a) => a.type).sort(), ['A', 'AAAA']);
  });

  it('§3.3 RFC 8482: ANY on an SRV-only name answers its SRV RRset with glue, never an empty NODATA', async () => {
    for (const name of [`_http._tcp.api.service.${D}`, `_web._tcp.service.${D}`, `_web._primary.service.${D}`]) {
      const srv = await query(s.port, name, 'SRV');
      const any = await query(s.port, name, 'ANY');
      assert.equal(rcode(any), 'NOERROR', name);
      assert.ok(any.answers!.length > 0, `${name}: ANY is answered`);
      assert.deepEqual(any.answers!.map((a) => a.type), any.answers!.map(() => 'SRV'), name);
      assert.deepEqual(answerData(any), answerData(srv), name);
      const glue = (p: typeof any) => (p.additionals ?? []).filter((a) => a.type !== 'OPT').map((a) => a.name).sort();
      assert.deepEqual(glue(any), glue(srv), `${name}: the same glue`);
    }
  });

  it('§3.4 TTL per service when set, else the default', async () => {
    assert.equal((await query(s.port, `slow.service.${D}`, 'A')).answers![0]!.ttl, 30);
    assert.equal((await query(s.port, `web.service.${D}`, 'A')).answers![0]!.ttl, 5);
  });

  it('§3.7 header: QR, AA, RD copied, RA=0, ID echoed', async () => {
    const r = await query(s.port, `web.service.${D}`, 'A', { id: 4321, rd: false });
    assert.equal(r.id, 4321);
    assert.equal(r.type, 'response');
    assert.equal(r.flag_aa, true);
    assert.equal(r.flag_rd, false);
    assert.equal(r.flag_ra, false);
    const rd = await query(s.port, `web.service.${D}`, 'A', { id: 1234, rd: true });
    assert.equal(rd.id, 1234);
    assert.equal(rd.flag_rd, true, 'RD echoed on a cache hit too');
  });

  it('§5.2 NODATA: AAAA on an IPv4-only service, TXT, MX', async () => {
    for (const t of ['AAAA', 'TXT', 'MX']) {
      const r = await query(s.port, `web.service.${D}`, t);
      assert.equal(rcode(r), 'NOERROR');
      assert.equal(r.answers!.length, 0);
      assert.equal(r.authorities!.length, 1);
      assert.equal(r.authorities![0]!.type, 'SOA');
      assert.equal(r.authorities![0]!.ttl, 5);
    }
    assert.deepEqual(answerData(await query(s.port, `v6only.service.${D}`, 'AAAA')), ['2001:db8::1']);
    assert.equal((await query(s.port, `v6only.service.${D}`, 'A')).answers!.length, 0);
  });

  it('§5.3 a known service with no healthy instance is NODATA, and so is a tag only unhealthy instances carry', async () => {
    for (const name of [`db.service.${D}`, `retired.web.service.${D}`]) {
      const r = await query(s.port, name, 'A');
      assert.equal(rcode(r), 'NOERROR', name);
      assert.equal(r.answers!.length, 0);
      assert.equal(r.authorities![0]!.type, 'SOA');
    }
  });

  it('§4.3 TCP answers the same as UDP', async () => {
    const r = await query(s.port, `web.service.${D}`, 'SRV', { tcp: true });
    assert.deepEqual(answerData(r), ['1 1 8080 10-0-0-1.addr.sd.internal', '1 5 8080 10-0-0-2.addr.sd.internal']);
  });
});

describe('options: order, maxAnswers, emptyService (§3.5, §3.6, §5.3)', () => {
  const four = [inst('10.0.0.1', [80]), inst('10.0.0.2', [80]), inst('10.0.0.3', [80]), inst('10.0.0.4', [80])];

  it('§3.5 random order: the first record varies between responses', async () => {
    const s = await startStack({ answer: { order: 'random' } });
    try {
      put(s.store, 'b', [svc('web', four)]);
      const firsts = new Set<string>();
      for (let i = 0; i < 60; i++) {
        const r = await query(s.port, `web.service.${D}`, 'A');
        assert.deepEqual(answerData(r), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
        firsts.add(String(r.answers![0]!.data));
      }
      assert.ok(firsts.size >= 3, `first records seen: ${[...firsts].join(',')}`);
    } finally {
      await s.stop();
    }
  });

  it('§3.5 round-robin rotates the first record; fixed keeps it', async () => {
    const rr = await startStack({ answer: { order: 'round-robin' } });
    const fx = await startStack({ answer: { order: 'fixed' } });
    try {
      put(rr.store, 'b', [svc('web', four)]);
      put(fx.store, 'b', [svc('web', four)]);
      const rrFirst: string[] = [];
      const fxFirst: string[] = [];
      for (let i = 0; i < 8; i++) {
        rrFirst.push(String((await query(rr.port, `web.service.${D}`, 'A')).answers![0]!.data));
        fxFirst.push(String((await query(fx.port, `web.service.${D}`, 'A')).answers![0]!.data));
      }
      assert.equal(new Set(rrFirst.slice(0, 4)).size, 4, `rotation: ${rrFirst.join(',')}`);
      assert.deepEqual(rrFirst.slice(4), rrFirst.slice(0, 4));
      assert.equal(new Set(fxFirst).size, 1);
    } finally {
      await rr.stop();
      await fx.stop();
    }
  });

  it('§3.5 with many records every one of them comes first in turn (random and round-robin)', async () => {
    const sixty = Array.from({ length: 60 }, (_, i) => inst(`10.5.0.${i + 1}`, [80]));
    const rnd = await startStack({ answer: { order: 'random' } });
    const rr = await startStack({ answer: { order: 'round-robin' } });
    try {
      put(rnd.store, 'b', [svc('web', sixty)]);
      put(rr.store, 'b', [svc('web', sixty)]);
      const rndFirst = new Set<string>();
      const rrFirst: string[] = [];
      for (let i = 0; i < 600; i++) {
        const r = await query(rnd.port, `web.service.${D}`, 'A', { edns: 1232 });
        assert.equal(r.answers!.length, 60);
        rndFirst.add(String(r.answers![0]!.data));
      }
      for (let i = 0; i < 60; i++) rrFirst.push(String((await query(rr.port, `web.service.${D}`, 'A', { edns: 1232 })).answers![0]!.data));
      assert.ok(rndFirst.size >= 50, `random: ${rndFirst.size} of 60 records came first`);
      assert.equal(new Set(rrFirst).size, 60, 'round-robin: each record first once per cycle');
    } finally {
      await rnd.stop();
      await rr.stop();
    }
  });

  it('§3.6 maxAnswers caps A and SRV records after shuffling, so different subsets are served', async () => {
    const s = await startStack({ answer: { maxAnswers: 2 } });
    try {
      put(s.store, 'b', [svc('web', four)]);
      const seen = new Set<string>();
      for (let i = 0; i < 40; i++) {
        const r = await query(s.port, `web.service.${D}`, 'A');
        assert.equal(r.answers!.length, 2);
        for (const a of r.answers!) seen.add(String(a.data));
      }
      assert.equal(seen.size, 4);
      const srv = await query(s.port, `web.service.${D}`, 'SRV');
      assert.equal(srv.answers!.length, 2, 'SRV is capped too (§3.6)');
      assert.equal(srv.additionals!.filter((a) => a.type === 'A').length, 2, 'glue only for the SRV records sent');
    } finally {
      await s.stop();
    }
  });

  it('§5.3 emptyService: nxdomain answers NXDOMAIN for a known empty service (Consul behaviour)', async () => {
    const s = await startStack({ answer: { emptyService: 'nxdomain' } });
    try {
      put(s.store, 'b', [svc('db', [])]);
      assert.equal(rcode(await query(s.port, `db.service.${D}`, 'A')), 'NXDOMAIN');
    } finally {
      await s.stop();
    }
  });
});

describe('readiness and failure (§5.4, §6.2, §6.3, §6.4)', () => {
  it('§5.4 before a backend first syncs its names are SERVFAIL, never NXDOMAIN; the apex still answers', async () => {
    const s = await startStack();
    try {
      s.store.register('consul', 'consul', (scope) => scope === null || scope === 'dc1');
      for (const name of [`web.service.${D}`, `nope.service.${D}`, `web.service.dc1.${D}`, `10-0-0-1.addr.${D}`]) {
        const r = await query(s.port, name, 'A');
        assert.equal(rcode(r), 'SERVFAIL', name);
      }
      assert.equal(rcode(await query(s.port, `web.service.dc9.${D}`, 'A')), 'NXDOMAIN', 'a scope the backend cannot own');
      assert.equal(rcode(await query(s.port, D, 'SOA')), 'NOERROR');
      put(s.store, 'consul', [svc('web', [inst('10.0.0.1', [80])], { scope: 'dc1' })], 'dc1');
      assert.deepEqual(answerData(await query(s.port, `web.service.${D}`, 'A')), ['10.0.0.1']);
      assert.equal(rcode(await query(s.port, `nope.service.${D}`, 'A')), 'NXDOMAIN');
    } finally {
      await s.stop();
    }
  });

  it('§6.2 several backends serving a name are merged and de-duplicated by address and port', async () => {
    const s = await startStack();
    try {
      put(s.store, 'a', [svc('web', [inst('10.0.0.1', [80]), inst('10.0.0.2', [80])])]);
      put(s.store, 'b', [svc('web', [inst('10.0.0.2', [80]), inst('10.0.0.3', [80])])]);
      assert.deepEqual(answerData(await query(s.port, `web.service.${D}`, 'A')), ['10.0.0.1', '10.0.0.2', '10.0.0.3']);
      assert.equal((await query(s.port, `web.service.${D}`, 'SRV')).answers!.length, 3);
    } finally {
      await s.stop();
    }
  });

  it('§6.3 a backend failing after sync keeps its last known set answering (stale, not empty)', async () => {
    const s = await startStack();
    try {
      put(s.store, 'a', [svc('web', [inst('10.0.0.1', [80])])]);
      s.store.fail('a', { code: 'SVCDNS_BACKEND_UNREACHABLE', message: 'connection refused' });
      assert.equal(s.store.status()[0]!.state, 'stale');
      assert.deepEqual(answerData(await query(s.port, `web.service.${D}`, 'A')), ['10.0.0.1']);
    } finally {
      await s.stop();
    }
  });

  it('§6.4 a change is visible in the very next answer (the cache is dropped with the generation)', async () => {
    const s = await startStack();
    try {
      put(s.store, 'a', [svc('web', [inst('10.0.0.1', [80])])]);
      assert.deepEqual(answerData(await query(s.port, `web.service.${D}`, 'A')), ['10.0.0.1']);
      assert.deepEqual(answerData(await query(s.port, `web.service.${D}`, 'A')), ['10.0.0.1']);
      put(s.store, 'a', [svc('web', [inst('10.0.0.9', [80])])]);
      assert.deepEqual(answerData(await query(s.port, `web.service.${D}`, 'A')), ['10.0.0.9']);
    } finally {
      await s.stop();
    }
  });
});

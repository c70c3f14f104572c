// e2e: svcdns as a real child process (bin/svcdns.js), queried with the real dig (BIND 9) and kdig (Knot):
// transports, EDNS, header flags, 0x20 case, SRV glue, negative answers and truncation, as a client sees them.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dig, kdig, rr, startSvcdns, tempDir, writeConfig, type DigReply, type SvcdnsProcess } from './harness.ts';

const BIG = 50; // instances of "big": 50 A records fit 1232 bytes (~852) but not 512 (~28 fit)

const SERVICES = `services:
  - name: web
    instances:
      - { address: 10.0.0.1, port: 8080, tags: [primary] }
      - { address: 10.0.0.2, port: 8080, tags: [canary] }
      - { address: 10.0.0.3, port: 8080, healthy: false }
  - name: api
    instances:
      - { address: 10.0.1.1, ports: { http: 80, grpc: 9090 } }
      - { address: "fd00::1:1", ports: { http: 80, grpc: 9090 } }
  - name: db
    instances:
      - { address: 10.0.2.1, port: 5432, healthy: false }
  - name: big
    instances:
${Array.from({ length: BIG }, (_, i) => `      - { address: 10.9.0.${i + 1}, port: 7000 }`).join('\n')}
`;

const sorted = (xs: readonly string[]) => [...xs].sort();
const msgSize = (r: DigReply) => Number(/MSG SIZE\s+rcvd: (\d+)/.exec(r.text)?.[1] ?? NaN);

describe('svcdns child process answering dig and kdig', { timeout: 20_000 }, () => {
  let svc: SvcdnsProcess;
  let cleanup = () => {};
  let port = 0;

  before(async () => {
    const tmp = tempDir();
    cleanup = tmp.cleanup;
    svc = await startSvcdns(writeConfig(tmp.dir, SERVICES, 'domains: [sd.internal]\nttlSeconds: 5\nnegativeTtlSeconds: 5\n'));
    port = svc.port;
  });
  after(async () => {
    await svc?.stop();
    cleanup();
  });

  test('A over UDP: AA, no RA, RD copied, TTL 5, OPT version 0 with our size (§3.1, §3.7, §5.6)', async () => {
    const r = await dig(port, ['web.service.sd.internal', 'A']);
    assert.equal(r.status, 'NOERROR');
    assert.equal(r.transport, 'UDP');
    assert.deepEqual(sorted(r.flags), ['aa', 'qr', 'rd']);
    assert.deepEqual(sorted(r.answer), ['web.service.sd.internal. 5 IN A 10.0.0.1', 'web.service.sd.internal. 5 IN A 10.0.0.2']);
    assert.equal(r.ednsVersion, 0);
    assert.equal(r.ednsUdpSize, 1232);
  });

  test('+norec: RD not set in the reply, RA never (§1.2, §3.7)', async () => {
    for (const r of [await dig(port, ['+norec', 'web.service.sd.internal']), await kdig(port, ['+norec', 'web.service.sd.internal'])]) {
      assert.equal(r.status, 'NOERROR');
      assert.deepEqual(sorted(r.flags), ['aa', 'qr']);
      assert.equal(r.answer.length, 2);
    }
  });

  test('+tcp with dig and kdig: same answer over TCP (§4.1)', async () => {
    for (const r of [await dig(port, ['+tcp', 'api.service.sd.internal', 'AAAA']), await kdig(port, ['+tcp', 'api.service.sd.internal', 'AAAA'])]) {
      assert.equal(r.transport, 'TCP');
      assert.equal(r.status, 'NOERROR');
      assert.deepEqual(r.answer, ['api.service.sd.internal. 5 IN AAAA fd00::1:1']);
    }
  });

  test('mixed-case question (0x20) is echoed byte for byte, owners use the client spelling (§1.4)', async () => {
    const name = 'WeB.SeRvIcE.sD.InTeRnAl.';
    // dig only: kdig 3.2 lowercases the name before sending, so it cannot exercise 0x20.
    for (const r of [await dig(port, [name]), await dig(port, ['+tcp', name]), await dig(port, ['SRV', '_HTTP._Tcp.API.service.sd.internal'])]) {
      const asked = r.question[0]!.split(' ')[0]!;
      if (asked.startsWith('_')) {
        assert.equal(asked, '_HTTP._Tcp.API.service.sd.internal.');
        for (const a of r.answer) assert.equal(rr(a).name, asked);
        assert.equal(r.answer.length, 2);
        continue;
      }
      assert.equal(r.status, 'NOERROR');
      assert.deepEqual(r.question, [`${name} IN A`]);
      assert.equal(r.answer.length, 2);
      for (const a of r.answer) assert.equal(rr(a).name, name);
    }
  });

  test('EDNS version 1 → BADVERS with OPT version 0, AA=0, no answer (§5.6)', async () => {
    // +noednsnegotiation: otherwise dig retries with version 0 and prints that reply instead.
    const d = await dig(port, ['+edns=1', '+noednsnegotiation', 'web.service.sd.internal']);
    const k = await kdig(port, ['+edns=1', 'web.service.sd.internal']);
    for (const r of [d, k]) {
      assert.equal(r.status, 'BADVERS');
      assert.equal(r.flags.includes('aa'), false);
      assert.deepEqual(r.answer, []);
      assert.equal(r.ednsVersion, 0);
    }
  });

  test('SRV (CoreDNS form) with glue for every target, A and AAAA (§2.3b, §3.2)', async () => {
    for (const r of [await dig(port, ['SRV', '_http._tcp.api.service.sd.internal']), await kdig(port, ['SRV', '_http._tcp.api.service.sd.internal'])]) {
      assert.equal(r.status, 'NOERROR');
      assert.deepEqual(sorted(r.answer), [
        '_http._tcp.api.service.sd.internal. 5 IN SRV 1 1 80 10-0-1-1.addr.sd.internal.',
        '_http._tcp.api.service.sd.internal. 5 IN SRV 1 1 80 fd00--1-1.addr.sd.internal.',
      ]);
      assert.deepEqual(sorted(r.additional), ['10-0-1-1.addr.sd.internal. 5 IN A 10.0.1.1', 'fd00--1-1.addr.sd.internal. 5 IN AAAA fd00::1:1']);
    }
  });

  test('SRV (Consul form) _web._tcp, and the .addr target name answers A (§2.3a, §2.4)', async () => {
    const r = await dig(port, ['SRV', '_web._tcp.service.sd.internal']);
    assert.deepEqual(sorted(r.answer), [
      '_web._tcp.service.sd.internal. 5 IN SRV 1 1 8080 10-0-0-1.addr.sd.internal.',
      '_web._tcp.service.sd.internal. 5 IN SRV 1 1 8080 10-0-0-2.addr.sd.internal.',
    ]);
    const a = await dig(port, ['10-0-0-2.addr.sd.internal']);
    assert.deepEqual(a.answer, ['10-0-0-2.addr.sd.internal. 5 IN A 10.0.0.2']);
    const gone = await dig(port, ['10-0-0-3.addr.sd.internal']); // unhealthy instance's address
    assert.equal(gone.status, 'NXDOMAIN');
  });

  test('NODATA: known service, nothing healthy → NOERROR, empty answer, SOA (TTL 5, minimum 5) (§5.2, §5.3)', async () => {
    for (const args of [['db.service.sd.internal'], ['web.service.sd.internal', 'AAAA'], ['web.service.sd.internal', 'TXT']]) {
      const r = await dig(port, args);
      assert.equal(r.status, 'NOERROR', args.join(' '));
      assert.ok(r.flags.includes('aa'));
      assert.deepEqual(r.answer, []);
      assert.equal(r.authority.length, 1);
      assert.match(r.authority[0]!, /^sd\.internal\. 5 IN SOA ns\.sd\.internal\. hostmaster\.sd\.internal\. \d+ 3600 600 86400 5$/);
    }
  });

  test('NXDOMAIN: unknown name in the zone, SOA in authority (§5.1)', async () => {
    const r = await kdig(port, ['nope.service.sd.internal']);
    assert.equal(r.status, 'NXDOMAIN');
    assert.ok(r.flags.includes('aa'));
    assert.deepEqual(r.answer, []);
    assert.match(r.authority[0] ?? '', /^sd\.internal\. 5 IN SOA ns\.sd\.internal\. /);
  });

  test('REFUSED outside the zone, including reverse (PTR) names: svcdns serves no in-addr.arpa (§1.2)', async () => {
    for (const args of [['example.com'], ['-x', '10.0.0.1'], ['sd.internal.example.', 'A']]) {
      const r = await dig(port, args);
      assert.equal(r.status, 'REFUSED', args.join(' '));
      assert.equal(r.flags.includes('aa'), false);
      assert.equal(r.flags.includes('ra'), false);
      assert.deepEqual(r.answer, []);
    }
  });

  test('truncation: 50 A records fit a 1232-byte buffer, not 512; TC=1 and a shorter answer (§4.2)', async () => {
    const full = await dig(port, ['+bufsize=1232', 'big.service.sd.internal']);
    assert.equal(full.flags.includes('tc'), false);
    assert.equal(full.answer.length, BIG);
    assert.ok(msgSize(full) <= 1232);

    for (const args of [['+bufsize=512'], ['+noedns']]) {
      const r = await dig(port, [...args, '+ignore', 'big.service.sd.internal']);
      assert.ok(r.flags.includes('tc'), `${args} should set TC`);
      assert.ok(r.answer.length > 0 && r.answer.length < BIG, `${args}: ${r.answer.length} answers`);
      assert.ok(msgSize(r) <= 512, `${args}: ${msgSize(r)} bytes`);
    }
    const k = await kdig(port, ['+bufsize=512', '+ignore', 'big.service.sd.internal']);
    assert.ok(k.flags.includes('tc'));
    assert.ok(k.answer.length > 0 && k.answer.length < BIG);
  });

  test('truncated UDP → dig retries over TCP and gets everything (§4.3)', async () => {
    const r = await dig(port, ['+bufsize=512', 'big.service.sd.internal']);
    assert.equal(r.transport, 'TCP');
    assert.equal(r.flags.includes('tc'), false);
    assert.equal(r.answer.length, BIG);
  });

  test('truncated SRV keeps glue consistent with the surviving targets; TCP carries all (§4.2, §4.3)', async () => {
    const u = await dig(port, ['+ignore', 'SRV', 'big.service.sd.internal']);
    assert.ok(u.flags.includes('tc'));
    assert.ok(u.answer.length > 0 && u.answer.length < BIG);
    const targets = new Set(u.answer.map((a) => rr(a).data.split(' ')[3]));
    for (const g of u.additional) assert.ok(targets.has(rr(g).name), `glue ${g} has no SRV`);

    const t = await dig(port, ['+tcp', 'SRV', 'big.service.sd.internal']);
    assert.equal(t.flags.includes('tc'), false);
    assert.equal(t.answer.length, BIG);
    assert.equal(t.additional.length, BIG);
  });
});

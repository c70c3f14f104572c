// e2e: a real dnsmasq running the shipped dnsmasq/svcdns.conf (forward port rewritten to a test svcdns) in front
// of svcdns as a child process — the "dnsmasq on :53 → svcdns on a high port" deployment, queried with dig.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, dig, rr, startDnsmasq, startSvcdns, tempDir, writeConfig, type DnsmasqProcess, type SvcdnsProcess } from './harness.ts';

const SHIPPED = join(REPO, 'dnsmasq/svcdns.conf');
const FORWARD = 'server=/sd.internal/127.0.0.1#8653';
const SVCDNS_AT = '127.0.0.1#8653';
/** The reverse zones of the sample config/svcdns.yaml, and the rev-server= lines that forward exactly them (§3.8). */
const REVERSE_ZONES = ['10.in-addr.arpa', 'd.f.ip6.arpa'];
const REV_SERVERS = ['rev-server=10.0.0.0/8,127.0.0.1#8653', 'rev-server=fd00::/8,127.0.0.1#8653'];
const BIG = 50; // 50 A records: ~852 bytes, over a 512-byte client's limit

const SERVICES = `services:
  - name: web
    instances:
      - { id: web-1, address: 10.0.0.1, port: 8080 }
      - { address: 10.0.0.2, port: 8080 }
  - name: api
    instances:
      - { address: 10.0.1.1, ports: { http: 80 } }
      - { address: "fd00::1:1", ports: { http: 80 } }
  - name: db
    instances:
      - { address: 10.0.2.1, port: 5432, healthy: false }
  - name: big
    instances:
${Array.from({ length: BIG }, (_, i) => `      - { address: 10.9.0.${i + 1}, port: 7000 }`).join('\n')}
`;

/** Directive lines of a dnsmasq config (comments and blanks dropped). */
const directives = (text: string) => text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));

describe('dnsmasq with dnsmasq/svcdns.conf forwarding sd.internal to svcdns', { timeout: 20_000 }, () => {
  let svc: SvcdnsProcess;
  let dm: DnsmasqProcess | undefined;
  let tmp: ReturnType<typeof tempDir>;
  let conf = '';

  before(async () => {
    tmp = tempDir();
    svc = await startSvcdns(writeConfig(tmp.dir, SERVICES, `reverseZones: ${JSON.stringify(REVERSE_ZONES)}\n`));
    const shipped = readFileSync(SHIPPED, 'utf8');
    assert.equal(shipped.split(FORWARD).length, 2, `${SHIPPED} must contain exactly one "${FORWARD}"`);
    conf = join(tmp.dir, 'dnsmasq.conf');
    writeFileSync(conf, shipped.replaceAll(SVCDNS_AT, `127.0.0.1#${svc.port}`));
    // stop-dns-rebind drops private addresses from forwarded answers; the shipped rebind-domain-ok must exempt ours.
    // bogus-priv answers private reverse names locally; the shipped rev-server lines must still reach svcdns.
    dm = await startDnsmasq(conf, ['--stop-dns-rebind', '--bogus-priv'], 'web.service.sd.internal');
  });
  after(async () => {
    await dm?.stop();
    await svc?.stop();
    tmp?.cleanup();
  });

  test('the shipped file forwards sd.internal and exactly the sample reverseZones, nothing wider (§1.2, §3.8)', () => {
    const lines = directives(readFileSync(SHIPPED, 'utf8'));
    assert.deepEqual(lines.filter((l) => l.startsWith('server=')), [FORWARD]);
    assert.deepEqual(lines.filter((l) => /rev-server|in-addr\.arpa|ip6\.arpa/.test(l)), REV_SERVERS);
    // The sample svcdns.yaml serves the zones these lines forward.
    const sample = readFileSync(join(REPO, 'config/svcdns.yaml'), 'utf8');
    assert.match(sample, new RegExp(`^reverseZones: \\[${REVERSE_ZONES.join(', ').replaceAll('.', '\\.')}\\]`, 'm'));
    // A drop-in must not change global behaviour (upstreams, port, caching) for names it does not own.
    assert.deepEqual(lines.filter((l) => /^(no-resolv|port|no-negcache|min-cache-ttl|local=|address=)/.test(l)), []);
  });

  test('A through dnsmasq, private addresses kept under stop-dns-rebind, TTL at most 5', async () => {
    const r = await dig(dm!.port, ['web.service.sd.internal']);
    assert.equal(r.status, 'NOERROR');
    assert.deepEqual(r.answer.map((a) => rr(a).data).sort(), ['10.0.0.1', '10.0.0.2']);
    for (const a of r.answer) assert.ok(rr(a).ttl >= 0 && rr(a).ttl <= 5, a);
  });

  test('mixed-case name survives the forwarder', async () => {
    const r = await dig(dm!.port, ['ApI.SeRvIcE.sd.internal', 'AAAA']);
    assert.equal(r.status, 'NOERROR');
    assert.deepEqual(r.question, ['ApI.SeRvIcE.sd.internal. IN AAAA']);
    assert.deepEqual(r.answer.map((a) => `${rr(a).name} ${rr(a).data}`), ['ApI.SeRvIcE.sd.internal. fd00::1:1']);
  });

  test('SRV over TCP through dnsmasq, with glue', async () => {
    const r = await dig(dm!.port, ['+tcp', 'SRV', '_http._tcp.api.service.sd.internal']);
    assert.equal(r.transport, 'TCP');
    assert.equal(r.status, 'NOERROR');
    assert.deepEqual(r.answer.map((a) => rr(a).data).sort(), ['1 1 80 10-0-1-1.addr.sd.internal.', '1 1 80 fd00--1-1.addr.sd.internal.']);
    assert.deepEqual(r.additional.map((a) => `${rr(a).name} ${rr(a).type} ${rr(a).data}`).sort(), [
      '10-0-1-1.addr.sd.internal. A 10.0.1.1',
      'fd00--1-1.addr.sd.internal. AAAA fd00::1:1',
    ]);
  });

  test('NODATA and NXDOMAIN pass through with the 5 s SOA (what dnsmasq negative-caches)', async () => {
    const nodata = await dig(dm!.port, ['db.service.sd.internal']);
    assert.equal(nodata.status, 'NOERROR');
    assert.deepEqual(nodata.answer, []);
    assert.match(nodata.authority[0] ?? '', /^sd\.internal\. [0-5] IN SOA ns\.sd\.internal\. hostmaster\.sd\.internal\. \d+ 3600 600 86400 5$/);
    const nx = await dig(dm!.port, ['nope.service.sd.internal']);
    assert.equal(nx.status, 'NXDOMAIN');
    assert.match(nx.authority[0] ?? '', /^sd\.internal\. [0-5] IN SOA /);
  });

  test('a large answer: a 512-byte client gets TC through dnsmasq, and its TCP retry gets every record (§4.2, §4.3)', async () => {
    const udp = await dig(dm!.port, ['+bufsize=512', '+ignore', 'big.service.sd.internal']);
    assert.ok(udp.flags.includes('tc'), 'dnsmasq must flag the truncation, not drop records silently');
    assert.ok(udp.answer.length < BIG);
    const retried = await dig(dm!.port, ['+bufsize=512', 'big.service.sd.internal']);
    assert.equal(retried.transport, 'TCP');
    assert.equal(retried.answer.length, BIG);
  });

  test('PTR through dnsmasq (rev-server, under bogus-priv): the instance name, the .addr name, IPv6 nibbles; NXDOMAIN passes through (§3.8)', async () => {
    const named = await dig(dm!.port, ['-x', '10.0.0.1']);
    assert.equal(named.status, 'NOERROR');
    assert.deepEqual(named.answer.map((a) => `${rr(a).name} ${rr(a).type} ${rr(a).data}`), ['1.0.0.10.in-addr.arpa. PTR web-1.web.service.sd.internal.']);
    const addr = await dig(dm!.port, ['-x', '10.0.0.2']);
    assert.deepEqual(addr.answer.map((a) => rr(a).data), ['10-0-0-2.addr.sd.internal.']);
    const v6 = await dig(dm!.port, ['-x', 'fd00::1:1']);
    assert.deepEqual(v6.answer.map((a) => rr(a).data), ['fd00--1-1.addr.sd.internal.']);
    const nx = await dig(dm!.port, ['-x', '10.0.2.1']); // db's only instance is unhealthy
    assert.equal(nx.status, 'NXDOMAIN');
    assert.match(nx.authority[0] ?? '', /^10\.in-addr\.arpa\. [0-5] IN SOA ns\.sd\.internal\. hostmaster\.sd\.internal\. /);
  });

  test('without the shipped rebind-domain-ok line, stop-dns-rebind would drop the answers (why the line is there)', async () => {
    const bare = join(tmp.dir, 'no-rebind-ok.conf');
    writeFileSync(bare, `server=/sd.internal/127.0.0.1#${svc.port}\n`);
    const plain = await startDnsmasq(bare, [], 'web.service.sd.internal');
    try {
      const r = await dig(plain.port, ['api.service.sd.internal']);
      assert.deepEqual(r.answer.map((a) => rr(a).data), ['10.0.1.1']);
    } finally {
      await plain.stop();
    }
    const strict = join(tmp.dir, 'strict.conf');
    writeFileSync(strict, `server=/sd.internal/127.0.0.1#${svc.port}\nstop-dns-rebind\n`);
    const s = await startDnsmasq(strict, [], 'db.service.sd.internal');
    try {
      const r = await dig(s.port, ['api.service.sd.internal']);
      assert.deepEqual(r.answer, []);
    } finally {
      await s.stop();
    }
  });
});

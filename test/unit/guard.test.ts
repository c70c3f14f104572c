// Unit: the pieces the listeners guard with (issue 12) — the allocation-free address parser (cidr.ts), the
// ordered client ACL (acl.ts) and the response rate limiter (rrl.ts) with an injected clock, so every count
// below is exact whatever the speed of the machine.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Acl, ACL } from '../../src/dns/acl.ts';
import { parseAddress, parsePrefix, prefixContains } from '../../src/dns/cidr.ts';
import { ClientAddress, Guard, questionType } from '../../src/dns/guard.ts';
import { RateLimiter, rateLimitSchema, RRL, RRL_CLASS, responseClass, slipResponse, type RateLimitConfig } from '../../src/dns/rrl.ts';
import { configSchema } from '../../src/config/schema.ts';
import { validateConfig } from '../../src/config/load.ts';
import { buildQuery, decode } from '../helpers/dns-client.ts';

const words = new Uint32Array(4);
const groups = new Uint16Array(8);
const parse = (s: string) => {
  const f = parseAddress(s, words, groups);
  return { f, w: Array.from(words.subarray(0, f === 4 ? 1 : 4)) };
};
const addr = (s: string) => new ClientAddress().set(s);

describe('cidr: addresses parsed from the text Node hands over, without allocation', () => {
  it('IPv4, IPv6 (every :: position), IPv4-mapped and zone suffixes', () => {
    assert.deepEqual(parse('192.0.2.7'), { f: 4, w: [0xc0000207] });
    assert.deepEqual(parse('::1'), { f: 6, w: [0, 0, 0, 1] });
    assert.deepEqual(parse('::'), { f: 6, w: [0, 0, 0, 0] });
    assert.deepEqual(parse('2001:db8::'), { f: 6, w: [0x20010db8, 0, 0, 0] });
    assert.deepEqual(parse('2001:db8:0:1:2:3:4:5'), { f: 6, w: [0x20010db8, 0x1, 0x20003, 0x40005] });
    assert.deepEqual(parse('fe80::1%eth0'), { f: 6, w: [0xfe800000, 0, 0, 1] });
    assert.deepEqual(parse('::ffff:10.1.2.3'), { f: 4, w: [0x0a010203] });
    assert.deepEqual(parse('64:ff9b::192.0.2.1'), { f: 6, w: [0x0064ff9b, 0, 0, 0xc0000201] });
    for (const bad of ['', '1.2.3', '1.2.3.256', '1.2.3.4.5', ':::', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9', '1:', 'x']) {
      assert.equal(parseAddress(bad, words, groups), 0, bad);
    }
  });

  it('agrees with the URL parser on random IPv6 addresses in every spelling', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), fc.boolean(), (g, upper) => {
        const full = g.map((x) => x.toString(16)).join(':');
        const short = new URL(`http://[${full}]/`).hostname.slice(1, -1); // RFC 5952 form, :: where it belongs
        for (const s of [full, short]) {
          const text = upper ? s.toUpperCase() : s;
          const f = parseAddress(text, words, groups);
          const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
          if (mapped) {
            assert.equal(f, 4, text);
            assert.equal(words[0], ((g[6]! << 16) | g[7]!) >>> 0, text);
          } else {
            assert.equal(f, 6, text);
            assert.deepEqual(Array.from(words), [0, 2, 4, 6].map((i) => ((g[i]! << 16) | g[i + 1]!) >>> 0), text);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('prefixes: masks, containment, bad input named', () => {
    const p = parsePrefix('10.1.2.3/16');
    assert.ok(typeof p !== 'string');
    assert.equal(p.words[0], 0x0a010000);
    const a = addr('10.1.200.9');
    assert.equal(prefixContains(p, a.family, a.words), true);
    const b = addr('10.2.0.1');
    assert.equal(prefixContains(p, b.family, b.words), false);
    const v6 = parsePrefix('2001:db8:abcd::/48');
    assert.ok(typeof v6 !== 'string');
    const c = addr('2001:db8:abcd:ffff::1');
    assert.equal(prefixContains(v6, c.family, c.words), true);
    const d = addr('2001:db8:abce::1');
    assert.equal(prefixContains(v6, d.family, d.words), false);
    assert.equal(prefixContains(v6, a.family, a.words), false, 'an IPv4 client never matches an IPv6 prefix');
    assert.match(String(parsePrefix('10.0.0.0/33')), /prefix length must be 0..32/);
    assert.match(String(parsePrefix('nope/8')), /must be an IP address or CIDR prefix/);
  });
});

describe('acl: ordered rules, first match decides, default allow (issue 12 #2)', () => {
  const acl = new Acl(
    configSchema.shape.acl.parse([
      { action: 'allow', from: '127.0.0.9' },
      { action: 'drop', from: ['127.0.0.0/24'], types: ['ANY'] },
      { action: 'refuse', from: ['127.0.0.0/24', 'fd00::/8'] },
      { action: 'refuse', from: '0.0.0.0/0', types: ['AXFR', 252, 'TYPE65'] },
    ]),
  );
  it('evaluates in order, with types', () => {
    const c = (s: string, t: number) => {
      const a = addr(s);
      return acl.check(a.family, a.words, t);
    };
    assert.equal(c('127.0.0.9', 255), ACL.ALLOW, 'an earlier allow wins over later refusals');
    assert.equal(c('127.0.0.5', 255), ACL.DROP);
    assert.equal(c('127.0.0.5', 1), ACL.REFUSE, 'the drop rule is limited to ANY');
    assert.equal(c('127.0.0.5', -1), ACL.REFUSE, 'no readable type: a typed rule does not match');
    assert.equal(c('fd12::1', 1), ACL.REFUSE);
    assert.equal(c('192.0.2.1', 1), ACL.ALLOW, 'no rule matches: allow');
    assert.equal(c('192.0.2.1', 252), ACL.REFUSE);
    assert.equal(c('192.0.2.1', 65), ACL.REFUSE);
    assert.equal(acl.needsType, true);
  });
  it('rejects bad rules at config time with the rule', () => {
    assert.throws(() => configSchema.shape.acl.parse([{ action: 'block', from: '10.0.0.0/8' }]));
    assert.throws(() => configSchema.shape.acl.parse([{ action: 'drop', from: '10.0.0.0/40' }]), /prefix length/);
    assert.throws(() => configSchema.shape.acl.parse([{ action: 'drop', from: '10.0.0.0/8', types: ['BOGUS'] }]), /unknown query type/);
    assert.throws(() => configSchema.shape.acl.parse([{ action: 'drop', from: '10.0.0.0/8', tpyes: ['A'] }]));
  });
  it('a bad rule in a config file is reported at its path, with the value and the rule', () => {
    const raw = { acl: [{ action: 'refuse', from: ['10.0.0.0/8', '10.300.0.0/16'] }], backends: [{ type: 'file', path: 'x.yaml' }] };
    assert.throws(() => validateConfig(raw, 'svcdns.yaml'), (e: Error) => /acl\[0\]\.from\[1\]/.test(e.message) && /10\.300\.0\.0\/16/.test(e.message) && /CIDR prefix/.test(e.message));
    const rl = { rateLimit: { enabled: true, tableSize: 1000 }, backends: [{ type: 'file', path: 'x.yaml' }] };
    assert.throws(() => validateConfig(rl, 'svcdns.yaml'), /rateLimit\.tableSize/);
    const ok = validateConfig({ backends: [{ type: 'file', path: 'x.yaml' }] }, 'svcdns.yaml');
    assert.equal(ok.rateLimit.enabled, false, 'off by default');
    assert.deepEqual(ok.acl, []);
    assert.equal(ok.tcp.maxConnectionsPerSource, 100);
  });
  it('a refused client gets REFUSED with its ID (question and OPT when readable); a response (QR=1) gets nothing (§5.5)', () => {
    const g = new Guard({ acl: [{ action: 'refuse', from: ['0.0.0.0/0'] }], rateLimit: rateLimitSchema.parse(undefined) }, null, () => 0);
    const q = buildQuery('web.service.sd.internal', 'SRV', { id: 999, edns: 4096 });
    const r = decode(g.refusal(q, q.length)!);
    assert.equal(r.id, 999);
    assert.equal(r.rcode, 'REFUSED');
    assert.equal(r.questions?.[0]?.type, 'SRV');
    assert.equal(r.additionals?.[0]?.type, 'OPT');
    const two = Buffer.from(q);
    two[5] = 2; // QDCOUNT 2: not a query we parse
    const bare = decode(g.refusal(two, two.length)!);
    assert.equal(bare.id, 999);
    assert.equal(bare.rcode, 'REFUSED');
    assert.equal(bare.questions?.length ?? 0, 0);
    const resp = Buffer.from(q);
    resp[2]! |= 0x80;
    assert.equal(g.refusal(resp, resp.length), null);
    assert.equal(g.admit(q, q.length, addr('192.0.2.1')), ACL.REFUSE);
  });
  it('reads the question type straight from the wire', () => {
    const q = buildQuery('web.service.sd.internal', 'SRV');
    assert.equal(questionType(q, q.length), 33);
    assert.equal(questionType(q, 20), -1);
  });
});

function limiter(over: Partial<RateLimitConfig>, clock: { ms: number }): RateLimiter {
  return new RateLimiter({ ...rateLimitSchema.parse(undefined), enabled: true, ...over }, () => clock.ms);
}

/** Answer `n` responses of `cls` to `ip`, returning [passed, dropped, slipped]. */
function run(l: RateLimiter, ip: string, n: number, cls: 0 | 1 | 2 | 3 = RRL_CLASS.POSITIVE): [number, number, number] {
  const a = addr(ip);
  const r: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < n; i++) r[l.check(a.family, a.words, cls)]!++;
  return r;
}

describe('rrl: token buckets per netblock and class, injected clock (issue 12 #1)', () => {
  it('a netblock gets its burst, then every 2nd limited response slips (slip 2), and refills at the rate', () => {
    const clock = { ms: 1000 };
    const l = limiter({ responsesPerSecond: 10, slip: 2 }, clock);
    assert.deepEqual(run(l, '192.0.2.1', 30), [10, 10, 10]);
    // The whole /24 shares it; the next /24 does not.
    assert.deepEqual(run(l, '192.0.2.200', 2), [0, 1, 1]);
    assert.deepEqual(run(l, '192.0.3.1', 10), [10, 0, 0]);
    clock.ms += 500; // half a second: 5 tokens
    assert.deepEqual(run(l, '192.0.2.1', 6), [5, 1, 0]);
    clock.ms += 60_000; // refills up to the burst, never beyond
    assert.deepEqual(run(l, '192.0.2.1', 12)[0], 10);
  });

  it('each response class has its own bucket and rate; slip 0 drops all, slip 1 slips all', () => {
    const clock = { ms: 0 };
    const l = limiter({ responsesPerSecond: 5, nxdomainsPerSecond: 2, errorsPerSecond: 1, slip: 0 }, clock);
    assert.deepEqual(run(l, '198.51.100.1', 8, RRL_CLASS.NXDOMAIN), [2, 6, 0]);
    assert.deepEqual(run(l, '198.51.100.1', 8, RRL_CLASS.POSITIVE), [5, 3, 0]);
    assert.deepEqual(run(l, '198.51.100.1', 8, RRL_CLASS.NODATA), [5, 3, 0], 'nodata defaults to responsesPerSecond');
    assert.deepEqual(run(l, '198.51.100.1', 3, RRL_CLASS.ERROR), [1, 2, 0]);
    const all = limiter({ responsesPerSecond: 1, slip: 1 }, clock);
    assert.deepEqual(run(all, '198.51.100.1', 4), [1, 0, 3]);
  });

  it('IPv6 clients share a /56 by default; the prefix lengths are configurable', () => {
    const clock = { ms: 0 };
    const l = limiter({ responsesPerSecond: 3, slip: 0 }, clock);
    assert.deepEqual(run(l, '2001:db8:0:ff::1', 3), [3, 0, 0]);
    assert.deepEqual(run(l, '2001:db8:0:1::2', 1), [0, 1, 0], 'same /56');
    assert.deepEqual(run(l, '2001:db8:0:100::1', 1), [1, 0, 0], 'next /56');
    const host = limiter({ responsesPerSecond: 1, slip: 0, ipv4PrefixLength: 32 }, clock);
    assert.deepEqual(run(host, '10.0.0.1', 2), [1, 1, 0]);
    assert.deepEqual(run(host, '10.0.0.2', 1), [1, 0, 0]);
  });

  it('the table is fixed: a flood from a million random sources neither grows it nor frees a limited netblock', () => {
    const clock = { ms: 0 };
    const l = limiter({ responsesPerSecond: 5, slip: 0 }, clock);
    const bytes = l.tableBytes;
    const hot = addr('203.0.113.9');
    const a = new ClientAddress();
    let hotPassed = 0;
    let x = 12345;
    for (let i = 0; i < 1_000_000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      a.family = 4;
      a.words[0] = x;
      l.check(4, a.words, RRL_CLASS.POSITIVE);
      if (i % 100 === 0 && l.check(hot.family, hot.words, RRL_CLASS.POSITIVE) === RRL.PASS) hotPassed++;
    }
    assert.equal(l.tableBytes, bytes);
    assert.equal(hotPassed, 5, 'the busy netblock keeps its (recently used) bucket: its burst, nothing more');
  });

  it('exempt prefixes are never limited (Guard.limit), the rest is', () => {
    const clock = { ms: 0 };
    const g = new Guard({ acl: [], rateLimit: { ...rateLimitSchema.parse(undefined), enabled: true, responsesPerSecond: 1, slip: 1, exempt: ['10.9.0.0/16'] } }, null, () => clock.ms);
    const out = Buffer.from(buildQuery('a.service.sd.internal', 'A'));
    out[2]! |= 0x80;
    out[7] = 1; // ANCOUNT 1: positive
    for (let i = 0; i < 5; i++) assert.equal(g.limit(out, addr('10.9.3.4')), out);
    assert.equal(g.limit(out, addr('10.8.3.4')), out);
    const slipped = g.limit(out, addr('10.8.3.4'));
    assert.ok(slipped !== null && slipped !== out);
  });

  it('response classes from the header; a slipped response is header + question with TC=1 and no records', () => {
    const q = buildQuery('web.service.sd.internal', 'A', { edns: 1232, id: 4242 });
    const resp = Buffer.from(q);
    resp[2] = 0x85; // QR AA RD
    resp[3] = 0x00;
    resp[7] = 2; // ANCOUNT 2 (the records themselves do not matter to the slip)
    assert.equal(responseClass(resp), RRL_CLASS.POSITIVE);
    resp[7] = 0;
    assert.equal(responseClass(resp), RRL_CLASS.NODATA);
    resp[3] = 3;
    assert.equal(responseClass(resp), RRL_CLASS.NXDOMAIN);
    resp[3] = 5;
    assert.equal(responseClass(resp), RRL_CLASS.ERROR);
    const s = decode(slipResponse(resp));
    assert.equal(s.id, 4242);
    assert.equal(s.flag_tc, true);
    assert.equal(s.questions?.[0]?.name, 'web.service.sd.internal');
    assert.equal((s.answers?.length ?? 0) + (s.authorities?.length ?? 0) + (s.additionals?.length ?? 0), 0);
    assert.equal(s.rcode, 'NOERROR');
  });
});

// Unit: the UDP sockets' lookup (src/dns/server.ts literalLookup). dgram passes the address of every send
// through it; a client's address is always an IP literal, handed back in the same turn (no nextTick, no
// dns.lookup argument checks per answer). Anything that is not a literal still resolves through dns.lookup.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { literalLookup } from '../../src/dns/server.ts';

describe('literalLookup (UDP send path)', () => {
  it('hands IPv4 and IPv6 literals back synchronously, with their family', () => {
    const got: [string, number][] = [];
    literalLookup('127.0.0.1', { family: 4 }, (err, address, family) => {
      assert.equal(err, null);
      got.push([address, family]);
    });
    literalLookup('::ffff:10.1.2.3', { family: 6 }, (err, address, family) => {
      assert.equal(err, null);
      got.push([address, family]);
    });
    // Both callbacks ran before literalLookup returned.
    assert.deepEqual(got, [
      ['127.0.0.1', 4],
      ['::ffff:10.1.2.3', 6],
    ]);
  });

  it('as a dgram socket\'s lookup (called with the family as a number): binds, sends to a literal and to a name', async () => {
    const calls: [string, unknown][] = [];
    const lookup = (host: string, options: number, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void) => {
      calls.push([host, options]);
      literalLookup(host, options, cb);
    };
    const peer = dgram.createSocket('udp4');
    const sock = dgram.createSocket({ type: 'udp4', lookup: lookup as never });
    try {
      peer.bind(0, '127.0.0.1');
      await once(peer, 'listening');
      // With a literal, bind() reports 'listening' before it returns: the callback is passed to bind() itself.
      await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
      const port = peer.address().port;
      const got: string[] = [];
      peer.on('message', (m) => got.push(m.toString()));
      sock.send('to-literal', port, '127.0.0.1');
      sock.send('to-name', port, 'localhost');
      while (got.length < 2) await once(peer, 'message');
      assert.deepEqual(got.sort(), ['to-literal', 'to-name']);
      assert.ok(calls.some(([h, o]) => h === '127.0.0.1' && o === 4), `dgram called the lookup with family 4: ${JSON.stringify(calls)}`);
      assert.ok(calls.some(([h]) => h === 'localhost'));
    } finally {
      sock.close();
      peer.close();
    }
  });

  it('resolves a name through dns.lookup, asynchronously', async () => {
    let returned = false;
    const r = await new Promise<[NodeJS.ErrnoException | null, string, number, boolean]>((resolve) => {
      literalLookup('localhost', { family: 4 }, (err, address, family) => resolve([err, address, family, returned]));
      returned = true;
    });
    assert.equal(r[3], true, 'called back after literalLookup returned');
    assert.equal(r[0], null);
    assert.equal(r[2], 4);
    assert.match(r[1], /^127\./);
  });
});

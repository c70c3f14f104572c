// Unit: the UDP sockets' lookup (src/dns/server.ts literalLookup). dgram passes the address of every send
// through it; a client's address is always an IP literal, handed back in the same turn (no nextTick, no
// dns.lookup argument checks per answer). Anything that is not a literal still resolves through dns.lookup.
import assert from 'node:assert/strict';
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

// Integration: the UDP receive buffer (issue 11 #6). The kernel default (~208 KB) drops a burst of queries
// while the thread is busy; `udp.receiveBufferBytes` asks for more, the kernel caps it at net.core.rmem_max,
// and the server reports what was granted. Real sockets on 127.0.0.1:0, real queries.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Answerer } from '../../src/answer/answer.ts';
import { QueryProcessor } from '../../src/dns/processor.ts';
import { DnsServer } from '../../src/dns/server.ts';
import { Store } from '../../src/store/store.ts';
import { query, rcode } from '../helpers/dns-client.ts';
import { inst, put, svc } from '../helpers/stack.ts';

const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
const rmemDefault = Number(readFileSync('/proc/sys/net/core/rmem_default', 'utf8').trim());

async function withServer(udpReceiveBufferBytes: number | undefined, fn: (s: DnsServer) => Promise<void>): Promise<void> {
  const store = new Store();
  put(store, 'test', [svc('web', [inst('10.0.0.1', [80])])]);
  const answerer = new Answerer(store, { domains: ['sd.internal'], ttlSeconds: 5, negativeTtlSeconds: 5, order: 'fixed', maxAnswers: 0, emptyService: 'nodata' });
  const server = new DnsServer({
    listen: [{ host: '127.0.0.1', port: 0 }],
    processor: new QueryProcessor({ responder: answerer, maxUdpPayloadBytes: 1232, order: 'fixed' }),
    tcpIdleTimeoutMs: 5000,
    tcpMaxConnections: 10,
    ...(udpReceiveBufferBytes !== undefined ? { udpReceiveBufferBytes } : {}),
  });
  try {
    await server.start();
    await fn(server);
  } finally {
    await server.close(0);
  }
}

describe('UDP receive buffer (issue 11 #6; Linux: reads /proc/sys/net/core)', () => {
  it('asks the kernel for udp.receiveBufferBytes and reports what it granted (capped at rmem_max), then answers', async () => {
    const asked = Math.max(rmemDefault * 2, 1 << 20);
    await withServer(asked, async (server) => {
      const b = server.udpReceiveBuffer!;
      assert.equal(b.requestedBytes, asked);
      assert.equal(b.rmemMaxBytes, rmemMax);
      assert.equal(b.grantedBytes, Math.min(asked, rmemMax));
      assert.ok(b.grantedBytes > rmemDefault || rmemMax <= rmemDefault, 'more than the kernel default when rmem_max allows it');
      const r = await query(server.addresses[0]!.port, 'web.service.sd.internal', 'A');
      assert.equal(rcode(r), 'NOERROR');
      assert.deepEqual(r.answers!.map((a) => a.data), ['10.0.0.1']);
    });
  });

  it('a request above net.core.rmem_max is capped there, not refused', async () => {
    await withServer(rmemMax * 4, async (server) => {
      assert.equal(server.udpReceiveBuffer!.grantedBytes, rmemMax);
      assert.equal(rcode(await query(server.addresses[0]!.port, 'web.service.sd.internal', 'A')), 'NOERROR');
    });
  });

  it('0 keeps the kernel default', async () => {
    await withServer(0, async (server) => {
      assert.equal(server.udpReceiveBuffer!.grantedBytes, rmemDefault);
    });
  });
});

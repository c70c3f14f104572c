// bench/ceiling: the ceiling for one Node process — a bare UDP loop that answers every packet with one prebuilt
// response, patching only the ID. No parsing, no lookup, no cache: nothing svcdns could do is cheaper. It sends
// the way svcdns does, per burst (src/dns/server.ts UdpReplies), with one copy of the response per held answer.
// Usage: node bench/ceiling.ts PORT HEX_RESPONSE

import dgram from 'node:dgram';
import { UDP_BATCH_MAX, UdpReplies, literalLookup } from '../src/dns/server.ts';

const port = Number(process.argv[2]);
const response = Buffer.from(process.argv[3] ?? '', 'hex');
if (!port || response.length < 12) {
  process.stderr.write('usage: ceiling.ts PORT HEX_RESPONSE\n');
  process.exit(2);
}
// A copy per held answer, twice over: a send that met EAGAIN stays queued in libuv with its buffer, so the next
// burst writes into the other half.
const copies = Array.from({ length: 2 * UDP_BATCH_MAX }, () => Buffer.from(response));
let half = 0;
const sock = dgram.createSocket({ type: 'udp4', lookup: literalLookup });
const replies = new UdpReplies(sock);
sock.on('message', (msg, rinfo) => {
  if (replies.held === 0) half ^= UDP_BATCH_MAX;
  const out = copies[half + replies.held]!;
  out[0] = msg[0]!;
  out[1] = msg[1]!;
  replies.push(out, rinfo.port, rinfo.address);
});
sock.bind(port, '127.0.0.1', () => process.stdout.write(`ceiling listening on 127.0.0.1:${port}\n`));
process.on('SIGTERM', () => process.exit(0));

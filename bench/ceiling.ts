// bench/ceiling: the ceiling for one Node process — a bare UDP loop that answers every packet with one prebuilt
// response, patching only the ID. No parsing, no lookup, no cache: nothing svcdns could do is cheaper.
// Usage: node bench/ceiling.ts PORT HEX_RESPONSE

import dgram from 'node:dgram';

const port = Number(process.argv[2]);
const response = Buffer.from(process.argv[3] ?? '', 'hex');
if (!port || response.length < 12) {
  process.stderr.write('usage: ceiling.ts PORT HEX_RESPONSE\n');
  process.exit(2);
}
const sock = dgram.createSocket('udp4');
sock.on('message', (msg, rinfo) => {
  response[0] = msg[0]!;
  response[1] = msg[1]!;
  sock.send(response, rinfo.port, rinfo.address);
});
sock.bind(port, '127.0.0.1', () => process.stdout.write(`ceiling listening on 127.0.0.1:${port}\n`));
process.on('SIGTERM', () => process.exit(0));

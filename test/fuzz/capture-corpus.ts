// test/fuzz/capture-corpus: writes the seed corpus (test/fuzz/corpus/*.bin) from real dig and kdig queries.
// Each tool sends to a listener here that records the bytes and never answers (so there is no retry noise
// beyond the first message). Run by hand when the corpus should change:
//   npx node --disable-warning=ExperimentalWarning test/fuzz/capture-corpus.ts

import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORPUS_DIR } from './harness.ts';

const CASES: [string, string, string[]][] = [
  ['dig-a', 'dig', ['web.service.sd.internal', 'A']],
  ['dig-aaaa-norec', 'dig', ['+norecurse', 'api.service.sd.internal', 'AAAA']],
  ['dig-srv', 'dig', ['_http._tcp.wide.service.sd.internal', 'SRV']],
  ['dig-srv-bufsize512', 'dig', ['+bufsize=512', '_grpc._tcp.api.service.sd.internal', 'SRV']],
  ['dig-any-noedns', 'dig', ['+noedns', 'big.service.sd.internal', 'ANY']],
  ['dig-dnssec-cookie', 'dig', ['+dnssec', '+cookie', 'primary.web.service.sd.internal', 'A']],
  ['dig-nsid-cd-ad', 'dig', ['+nsid', '+cdflag', '+adflag', 'sd.internal', 'SOA']],
  ['dig-edns1', 'dig', ['+edns=1', '+noednsnegotiation', 'web.service.sd.internal', 'A']],
  ['dig-class-chaos', 'dig', ['version.bind', 'TXT', 'CH']],
  ['dig-axfr-udp', 'dig', ['+notcp', 'sd.internal', 'AXFR']],
  ['dig-ptr', 'dig', ['-x', '10.0.0.1']],
  ['dig-opcode-status', 'dig', ['+opcode=status', 'sd.internal']],
  ['dig-subnet-ednsopt', 'dig', ['+subnet=10.0.0.0/24', '+ednsopt=65001:cafe', 'big6.service.sd.internal', 'AAAA']],
  ['dig-zflag-padding', 'dig', ['+zflag', '+padding=64', 'db.service.sd.internal', 'A']],
  ['dig-tcp', 'dig', ['+tcp', 'big.service.sd.internal', 'A']],
  ['kdig-0x20', 'kdig', ['+noidn', 'wEb.SeRvIcE.sD.InTeRnAl', 'A']],
  ['kdig-cookie-padding', 'kdig', ['+cookie', '+padding', '+dnssec', 'even.big.service.sd.internal', 'A']],
  ['kdig-edns-opts-tc', 'kdig', ['+ednsopt=10', '+expire', '+tcflag', '+aaflag', 'api.service.sd.internal', 'ANY']],
  ['kdig-srv-tcp', 'kdig', ['+tcp', '_admin._tcp.wide.service.staging.sd.internal', 'SRV']],
  ['kdig-nsid-bufsize4096', 'kdig', ['+nsid', '+bufsize=4096', '0a-00-00-01.addr.sd.internal', 'A']],
  ['kdig-ns', 'kdig', ['sd.internal', 'NS']],
  ['kdig-mx-nxdomain', 'kdig', ['nosuch.service.sd.internal', 'MX']],
  ['kdig-out-of-zone', 'kdig', ['example.com', 'A']],
  ['kdig-root', 'kdig', ['.', 'NS']],
  ['kdig-type65535', 'kdig', ['sd.internal', 'TYPE65535']],
];

async function capture(name: string, tool: string, args: string[]): Promise<void> {
  const udp = dgram.createSocket('udp4');
  const tcp = net.createServer();
  try {
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    const port = udp.address().port;
    await new Promise<void>((r, j) => tcp.once('error', j).listen(port, '127.0.0.1', r));
    const got = new Promise<Buffer>((resolve) => {
      udp.once('message', (m) => resolve(m));
      tcp.on('connection', (c) => {
        let buf = Buffer.alloc(0);
        c.on('data', (d) => {
          buf = Buffer.concat([buf, d]);
          if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
            resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
            c.destroy();
          }
        });
      });
    });
    const opts = tool === 'kdig' ? ['+retry=0', '+timeout=1'] : ['+tries=1', '+time=1'];
    const child = execFile(tool, ['@127.0.0.1', '-p', String(port), ...opts, ...args], () => {});
    try {
      const msg = await got;
      writeFileSync(join(CORPUS_DIR, `${name}.bin`), msg);
      console.log(`${name}: ${msg.length} bytes`);
    } finally {
      child.kill();
    }
  } finally {
    udp.close();
    tcp.close();
  }
}

mkdirSync(CORPUS_DIR, { recursive: true });
for (const [name, tool, args] of CASES) {
  // A tool that never sends (an option it rejects) must not hang the capture.
  await Promise.race([capture(name, tool, args), new Promise<void>((_, j) => setTimeout(() => j(new Error(`${name}: ${tool} sent nothing`)), 10_000).unref())]);
}

// e2e: a real HAProxy (Debian `haproxy`) discovering its servers from svcdns with a `resolvers` section and a
// `server-template` on an SRV name, as the README section "Clients with record limits" configures it. HAProxy uses a truncated
// UDP answer as if it were complete (issue 10 #8), so a service with more instances than fit 1232 bytes must be
// fetched whole: over TCP (`tcp@` nameserver), or over UDP with `accepted_payload_size` and our
// `maxUdpPayloadBytes` raised together. The runtime API (`show servers state` on the stats socket) tells which
// servers HAProxy resolved.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { collect, dig, pollUntil, requireTool, startSvcdns, tempDir, writeConfig, type SvcdnsProcess } from './harness.ts';

const INSTANCES = 40; // 40 SRV records with glue: ~2.4 KB, about twice what fits 1232 bytes
const SRV_NAME = '_http._tcp.web.service.sd.internal';
const ADDRESSES = Array.from({ length: INSTANCES }, (_, i) => `10.7.0.${i + 1}`);
const SERVICES = `services:
  - name: web
    instances:
${ADDRESSES.map((a) => `      - { address: ${a}, ports: { http: 8080 } }`).join('\n')}
`;

/** `show servers state BACKEND` over HAProxy's stats socket: the address:port of every resolved server. */
function resolvedServers(socketPath: string, backend: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ path: socketPath });
    let out = '';
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`show servers state ${backend}\n`));
    sock.on('data', (d: string) => (out += d));
    sock.on('error', reject);
    sock.on('end', () => {
      // Line 1 is the format version, line 2 the "# be_id be_name srv_id srv_name srv_addr ..." header.
      const header = out.split('\n').find((l) => l.startsWith('# be_id'));
      if (!header) return reject(new Error(`unexpected runtime API output: ${out}`));
      const cols = header.slice(2).split(' ');
      const addr = cols.indexOf('srv_addr');
      const port = cols.indexOf('srv_port');
      const rows = out.split('\n').filter((l) => l !== '' && !l.startsWith('#') && l.includes(' '));
      resolve(rows.map((l) => l.split(' ')).filter((f) => f[addr] !== '0.0.0.0' && f[addr] !== '-').map((f) => `${f[addr]}:${f[port]}`));
    });
  });
}

async function withHaproxy(dir: string, nameserver: string, payloadSize: number, fn: (socket: string) => Promise<void>): Promise<void> {
  const bin = requireTool('haproxy');
  const socket = join(dir, `haproxy-${payloadSize}-${nameserver.startsWith('tcp@') ? 'tcp' : 'udp'}.sock`);
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    `global
  stats socket ${socket} mode 600 level admin
defaults
  mode tcp
  timeout connect 1s
  timeout client 5s
  timeout server 5s
resolvers svcdns
  nameserver svcdns ${nameserver}
  accepted_payload_size ${payloadSize}
  resolve_retries 3
  timeout resolve 200ms
  timeout retry 500ms
  hold valid 10s
backend web
  server-template web ${INSTANCES + 10} ${SRV_NAME} resolvers svcdns init-addr none
`,
  );
  const check = await new Promise<{ code: number | null; text: string }>((resolve) => {
    const c = spawn(bin, ['-c', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    const io = collect(c);
    void io.exited.then((code) => resolve({ code, text: io.stdout() + io.stderr() }));
  });
  assert.equal(check.code, 0, `haproxy -c rejects the config: ${check.text}`);
  const child = spawn(bin, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  const io = collect(child);
  try {
    await pollUntil('HAProxy to open its stats socket', async () => {
      if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}: ${io.stdout()}${io.stderr()}`);
      return resolvedServers(socket, 'web').then(() => true);
    });
    await fn(socket);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await io.exited;
    clearTimeout(t);
  }
}

describe('HAProxy resolvers + server-template on an SRV name (README "Clients with record limits")', { timeout: 120_000 }, () => {
  let svc: SvcdnsProcess;
  let tmp: ReturnType<typeof tempDir>;
  const expected = ADDRESSES.map((a) => `${a}:8080`).sort();

  before(async () => {
    tmp = tempDir();
    svc = await startSvcdns(writeConfig(tmp.dir, SERVICES, 'maxUdpPayloadBytes: 8192\n'));
    // The premise: the whole set does not fit a 1232-byte UDP answer, so it is truncated there.
    const small = await dig(svc.port, ['+norec', '+bufsize=1232', '+ignore', 'SRV', SRV_NAME]);
    assert.ok(small.flags.includes('tc') && small.answer.length < INSTANCES, `${small.answer.length} SRV in a 1232-byte answer`);
  });
  after(async () => {
    await svc?.stop();
    tmp?.cleanup();
  });

  const wholeSet = async (socket: string) => {
    const got = await pollUntil(`HAProxy to resolve all ${INSTANCES} servers`, async () => {
      const s = (await resolvedServers(socket, 'web')).sort();
      return s.length >= INSTANCES ? s : null;
    });
    assert.deepEqual(got, expected, 'exactly the healthy instances, each once, with the SRV port');
  };

  test('§4.3 a tcp@ nameserver gets the whole set', async () => {
    await withHaproxy(tmp.dir, `tcp@127.0.0.1:${svc.port}`, 8192, wholeSet);
  });

  test('§4.2 over UDP, accepted_payload_size 8192 with maxUdpPayloadBytes 8192 gets the whole set', async () => {
    await withHaproxy(tmp.dir, `127.0.0.1:${svc.port}`, 8192, wholeSet);
  });
});

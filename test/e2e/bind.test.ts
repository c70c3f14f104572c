// e2e: a real BIND (Debian `bind9`, 9.18.28 or later) forwarding sd.internal to svcdns, as the README's
// "Clients with record limits" section configures it. BIND refuses to cache an RRset of more than
// `max-records-per-type` records (default 100) and answers SERVFAIL; svcdns's `maxAnswers` (§3.6, A/AAAA and
// SRV) keeps a big service answerable through it, and raising the limit in BIND passes the whole set.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collect, dig, freePort, pollUntil, requireTool, rr, startSvcdns, tempDir, writeConfig, type SvcdnsProcess } from './harness.ts';

const INSTANCES = 150;
const BIG = 'big.service.sd.internal';
const BIG_SRV = '_http._tcp.big.service.sd.internal';
const SERVICES = `services:
  - name: web
    instances:
      - { address: 10.0.0.1, port: 80 }
  - name: big
    instances:
${Array.from({ length: INSTANCES }, (_, i) => `      - { address: 10.8.${i >> 8}.${(i & 255) + 1}, ports: { http: 8080 } }`).join('\n')}
`;

/** Run named in the foreground forwarding sd.internal to `forwardPort`, with `extra` options; until `fn` ends. */
async function withNamed(dir: string, forwardPort: number, extra: string, fn: (port: number) => Promise<void>): Promise<void> {
  const bin = requireTool('named');
  const port = await freePort();
  const conf = join(dir, `named-${port}.conf`);
  writeFileSync(
    conf,
    `options {
  directory "${dir}";
  pid-file none;
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion yes;
  allow-query { 127.0.0.1; };
  dnssec-validation no;
  ${extra}
};
zone "sd.internal" { type forward; forward only; forwarders { 127.0.0.1 port ${forwardPort}; }; };
`,
  );
  const child = spawn(bin, ['-g', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const io = collect(child);
  try {
    await pollUntil('named to answer through svcdns', async () => {
      if (child.exitCode !== null) throw new Error(`named exited ${child.exitCode}: ${io.stdout()}${io.stderr()}`);
      return (await dig(port, ['+tcp', 'web.service.sd.internal'])).status === 'NOERROR';
    });
    await fn(port);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await io.exited;
    clearTimeout(t);
  }
}

describe('BIND forwarding to svcdns: max-records-per-type and maxAnswers (§3.6)', { timeout: 120_000 }, () => {
  let tmp: ReturnType<typeof tempDir>;
  let plain: SvcdnsProcess;
  let capped: SvcdnsProcess;

  before(async () => {
    tmp = tempDir();
    const plainDir = join(tmp.dir, 'plain');
    const cappedDir = join(tmp.dir, 'capped');
    for (const d of [plainDir, cappedDir]) mkdirSync(d);
    plain = await startSvcdns(writeConfig(plainDir, SERVICES));
    capped = await startSvcdns(writeConfig(cappedDir, SERVICES, 'maxAnswers: 100\n'));
  });
  after(async () => {
    await plain?.stop();
    await capped?.stop();
    tmp?.cleanup();
  });

  test('BIND default (100): the whole 150-record RRset is SERVFAIL; maxAnswers 100 answers A and SRV', async () => {
    await withNamed(tmp.dir, plain.port, '', async (port) => {
      for (const [type, name] of [['A', BIG], ['SRV', BIG_SRV]] as const) {
        assert.equal((await dig(port, ['+tcp', type, name])).status, 'SERVFAIL', `${type}: BIND rejects 150 records`);
      }
    });
    await withNamed(tmp.dir, capped.port, '', async (port) => {
      for (const [type, name] of [['A', BIG], ['SRV', BIG_SRV]] as const) {
        const r = await dig(port, ['+tcp', type, name]);
        assert.equal(r.status, 'NOERROR', type);
        assert.equal(r.answer.filter((a) => rr(a).type === type).length, 100, `${type}: capped at 100`);
      }
    });
  });

  test('BIND with max-records-per-type raised passes the whole set', async () => {
    await withNamed(tmp.dir, plain.port, 'max-records-per-type 1000;', async (port) => {
      for (const [type, name] of [['A', BIG], ['SRV', BIG_SRV]] as const) {
        const r = await dig(port, ['+tcp', type, name]);
        assert.equal(r.status, 'NOERROR', type);
        assert.equal(r.answer.filter((a) => rr(a).type === type).length, INSTANCES, type);
      }
    });
  });
});

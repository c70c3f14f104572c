// e2e: a real Unbound with `qname-minimisation-strict: yes`, stub zone sd.internal → svcdns as a child process.
// A strict QNAME-minimising resolver walks down label by label (`service.D`, `_tcp.service.D`, ...) and stops at
// the first NXDOMAIN (RFC 8020), so every name above a served one must exist (§2.5).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collect, dig, freePort, pollUntil, requireTool, rr, startSvcdns, tempDir, writeConfig, type SvcdnsProcess } from './harness.ts';

const SERVICES = `services:
  - name: web
    instances:
      - { address: 10.0.0.1, port: 8080, tags: [primary] }
      - { address: 10.0.0.2, port: 8080 }
  - name: api
    instances:
      - { address: 10.0.1.1, ports: { http: 80 } }
      - { address: "::1", ports: { http: 80 } }
  - name: web
    scope: staging
    instances:
      - { address: 10.1.0.1, port: 8080 }
`;

function unboundConf(dir: string, port: number, upstream: number): string {
  const path = join(dir, 'unbound.conf');
  writeFileSync(
    path,
    [
      'server:',
      '  interface: 127.0.0.1',
      `  port: ${port}`,
      '  do-daemonize: no',
      '  use-syslog: no',
      '  logfile: ""',
      '  verbosity: 1',
      '  username: ""',
      '  chroot: ""',
      `  directory: "${dir}"`,
      `  pidfile: "${join(dir, 'unbound.pid')}"`,
      '  num-threads: 1',
      '  do-ip6: no',
      '  so-reuseport: no',
      '  access-control: 127.0.0.0/8 allow',
      '  do-not-query-localhost: no',
      // Iterator only: svcdns does not sign its zone, and no trust anchor is needed for a test.
      '  module-config: "iterator"',
      '  qname-minimisation: yes',
      '  qname-minimisation-strict: yes',
      '  harden-below-nxdomain: yes',
      '  cache-max-negative-ttl: 1',
      'remote-control:',
      '  control-enable: no',
      'stub-zone:',
      '  name: "sd.internal"',
      `  stub-addr: 127.0.0.1@${upstream}`,
      '',
    ].join('\n'),
  );
  return path;
}

describe('Unbound (strict QNAME minimisation) in front of svcdns: §2.5, RFC 8020', { timeout: 120_000 }, () => {
  let svc: SvcdnsProcess | undefined;
  let ub: ChildProcess | undefined;
  let ubExited: Promise<number | null> | undefined;
  let ubOutput = () => '';
  let port = 0;
  let tmp: ReturnType<typeof tempDir> | undefined;

  before(async () => {
    const bin = requireTool('unbound');
    tmp = tempDir();
    svc = await startSvcdns(writeConfig(tmp.dir, SERVICES));
    port = await freePort();
    ub = spawn(bin, ['-d', '-c', unboundConf(tmp.dir, port, svc.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const io = collect(ub);
    ubExited = io.exited;
    ubOutput = () => io.stdout() + io.stderr();
    await pollUntil('unbound to answer', async () => {
      if (ub!.exitCode !== null) throw new Error(`unbound exited ${ub!.exitCode}: ${ubOutput()}`);
      return (await dig(port, ['+time=1', '+tries=1', 'sd.internal', 'SOA'])).status === 'NOERROR';
    });
  });
  after(async () => {
    if (ub && ub.exitCode === null && ub.signalCode === null) {
      ub.kill('SIGTERM');
      const t = setTimeout(() => ub!.kill('SIGKILL'), 3000);
      await ubExited;
      clearTimeout(t);
    }
    await svc?.stop();
    tmp?.cleanup();
  });

  const through = async (name: string, type: string) => {
    const r = await dig(port, [name, type]);
    return { status: r.status, answer: r.answer.map(rr).filter((x) => x.type === type).map((x) => x.data).sort() };
  };

  test('§2.3a `_N._tcp` and `_N._T` SRV names resolve, scoped too', async () => {
    assert.deepEqual(await through('_web._tcp.service.sd.internal', 'SRV'), {
      status: 'NOERROR',
      answer: ['1 1 8080 10-0-0-1.addr.sd.internal.', '1 1 8080 10-0-0-2.addr.sd.internal.'],
    });
    assert.deepEqual(await through('_web._primary.service.sd.internal', 'SRV'), {
      status: 'NOERROR',
      answer: ['1 1 8080 10-0-0-1.addr.sd.internal.'],
    });
    assert.deepEqual(await through('_web._tcp.service.staging.sd.internal', 'SRV'), {
      status: 'NOERROR',
      answer: ['1 1 8080 10-1-0-1.addr.sd.internal.'.replace('.addr.', '.addr.staging.')],
    });
  });

  test('§2.3b `_P._PROTO.N` SRV names and their §2.4 targets resolve', async () => {
    assert.deepEqual(await through('_http._tcp.api.service.sd.internal', 'SRV'), {
      status: 'NOERROR',
      answer: ['1 1 80 0--1.addr.sd.internal.', '1 1 80 10-0-1-1.addr.sd.internal.'],
    });
    assert.deepEqual(await through('0--1.addr.sd.internal', 'AAAA'), { status: 'NOERROR', answer: ['::1'] });
    assert.deepEqual(await through('primary.web.service.sd.internal', 'A'), { status: 'NOERROR', answer: ['10.0.0.1'] });
  });

  test('§5.1 a name that does not exist is still NXDOMAIN through Unbound', async () => {
    assert.equal((await through('_nope._tcp.service.sd.internal', 'SRV')).status, 'NXDOMAIN');
    assert.equal((await through('_web._nosuchtag.service.sd.internal', 'SRV')).status, 'NXDOMAIN');
  });
});

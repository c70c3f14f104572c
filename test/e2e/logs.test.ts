// e2e: the JSON log lines of the real CLI (issue 13, "Packaging and logs"): string levels like Consul's
// `-log-json` (`"level":"info"`), and a query log that names the client's address and source port, for UDP and TCP.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dig, freePort, pollUntil, startSvcdns, tempDir, writeConfig, type SvcdnsProcess } from './harness.ts';

const SERVICES = `services:
  - name: web
    instances:
      - { address: 10.0.0.1, port: 8080 }
`;

interface LogLine {
  level?: unknown;
  time?: unknown;
  log?: string;
  event?: string;
  transport?: string;
  qname?: string | null;
  client?: unknown;
  clientPort?: unknown;
}

function lines(stdout: string): LogLine[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

describe('log format through the CLI (issue 13)', { timeout: 120_000 }, () => {
  let svc: SvcdnsProcess | undefined;
  const tmp = tempDir();

  before(async () => {
    // sampleRate 1: every query is recorded; stdout, so the lines come back through the child's own output.
    svc = await startSvcdns(writeConfig(tmp.dir, SERVICES, 'queryLog:\n  enabled: true\n  sampleRate: 1\n'));
  });
  after(async () => {
    await svc?.stop();
    tmp.cleanup();
  });

  test('every line has a string level and an ISO time, like Consul -log-json', () => {
    const all = lines(svc!.output().stdout);
    const listening = all.find((l) => l.event === 'listening');
    assert.ok(listening, 'the listening line');
    assert.equal(listening.level, 'info');
    for (const l of all) {
      assert.equal(typeof l.level, 'string', JSON.stringify(l));
      assert.match(String(l.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
  });

  test('the query log carries the client address and source port (UDP and TCP)', async () => {
    const udpPort = await freePort();
    const tcpPort = await freePort();
    await dig(svc!.port, ['-b', `127.0.0.1#${udpPort}`, '+norec', 'udp-probe.web.service.sd.internal']);
    await dig(svc!.port, ['-b', `127.0.0.1#${tcpPort}`, '+tcp', '+norec', 'tcp-probe.web.service.sd.internal']);
    const find = (qname: string) => lines(svc!.output().stdout).find((l) => l.log === 'query' && l.qname === qname);
    const udp = await pollUntil('the UDP query in the query log', async () => find('udp-probe.web.service.sd.internal'));
    const tcp = await pollUntil('the TCP query in the query log', async () => find('tcp-probe.web.service.sd.internal'));
    assert.deepEqual([udp.level, udp.transport, udp.client, udp.clientPort], ['info', 'udp', '127.0.0.1', udpPort]);
    assert.deepEqual([tcp.level, tcp.transport, tcp.client, tcp.clientPort], ['info', 'tcp', '127.0.0.1', tcpPort]);
  });
});

// e2e (issue 12 #2, #5): the client ACL and response rate limiting as a real client sees them — svcdns as a
// child process, the real dig bound to different loopback sources with `-b 127.0.N.M`. What README "Rate
// limiting and ACLs" shows is this output.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dig, requireTool, run, startSvcdns, tempDir, writeConfig, type SvcdnsProcess } from './harness.ts';
import { pollUntil } from './harness.ts';

const SERVICES = `services:
  - name: web
    instances:
      - { address: 10.0.0.1, port: 8080 }
      - { address: 10.0.0.2, port: 8080 }
`;

const CONFIG = `acl:
  - { action: allow, from: 127.0.0.1 }
  - { action: refuse, from: 127.0.2.0/24 }
  - { action: drop, from: 127.0.3.0/24 }
  - { action: drop, from: 127.0.4.0/24, types: [ANY] }
rateLimit:
  enabled: true
  responsesPerSecond: 0.001   # no refill worth a response during the test, whatever the machine's speed
  burst: 2
  slip: 1
  exempt: [127.0.0.1]        # the harness's readiness polls
`;

/** The admin address from the `listening` log line. */
function adminOf(svc: SvcdnsProcess): string {
  for (const line of svc.output().stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const rec = JSON.parse(line) as { event?: string; admin?: { host: string; port: number } | null };
    if (rec.event === 'listening' && rec.admin) return `http://${rec.admin.host}:${rec.admin.port}`;
  }
  throw new Error('no admin address logged');
}

async function metric(svc: SvcdnsProcess, re: RegExp): Promise<number> {
  const text = await (await fetch(`${adminOf(svc)}/metrics`)).text();
  return Number(re.exec(text)?.[1] ?? 0);
}

describe('ACL and rate limiting seen by dig -b (issue 12 #2, #5)', { timeout: 120_000 }, () => {
  let svc: SvcdnsProcess;
  let cleanup = () => {};
  before(async () => {
    const tmp = tempDir();
    cleanup = tmp.cleanup;
    svc = await startSvcdns(writeConfig(tmp.dir, SERVICES, CONFIG));
  });
  after(async () => {
    await svc?.stop();
    cleanup();
  });

  test('refuse: dig -b 127.0.2.1 gets REFUSED over UDP and TCP; an unlisted source gets the answer', async () => {
    const u = await dig(svc.port, ['-b', '127.0.2.1', 'web.service.sd.internal', 'A']);
    assert.equal(u.status, 'REFUSED');
    assert.deepEqual(u.answer, []);
    assert.deepEqual(u.question, ['web.service.sd.internal. IN A']);
    assert.notEqual(u.ednsVersion, null, 'OPT echoed');
    const t = await dig(svc.port, ['-b', '127.0.2.1', '+tcp', 'web.service.sd.internal', 'A']);
    assert.equal(t.status, 'REFUSED');
    assert.equal(t.transport, 'TCP');
    const ok = await dig(svc.port, ['-b', '127.0.9.1', 'web.service.sd.internal', 'A']);
    assert.equal(ok.status, 'NOERROR');
    assert.equal(ok.answer.length, 2);
  });

  test('drop: dig -b 127.0.3.1 gets no reply (counted as dropped); -b 127.0.4.1 is dropped for ANY only', async () => {
    const dropsBefore = await metric(svc, /^svcdns_acl_requests_total\{action="drop"\} (\d+)/m);
    const r = await run(requireTool('dig'), ['@127.0.0.1', '-p', String(svc.port), '-b', '127.0.3.1', '+tries=1', '+time=2', 'web.service.sd.internal', 'A']);
    assert.equal(r.code, 9, `dig exits 9 (no reply): ${r.stdout}`);
    // The server saw the query and decided to drop it (not merely late): the drop counter says so.
    await pollUntil('the drop to be counted', async () => (await metric(svc, /^svcdns_acl_requests_total\{action="drop"\} (\d+)/m)) >= dropsBefore + 1);
    const a = await dig(svc.port, ['-b', '127.0.4.1', 'web.service.sd.internal', 'A']);
    assert.equal(a.answer.length, 2);
  });

  test('rate limit: a /24 gets its burst, then TC=1 with no records; dig retries over TCP and gets the answer', async () => {
    const from = ['-b', '127.0.5.1', '+ignore', 'web.service.sd.internal', 'A'];
    const first = await dig(svc.port, from);
    const second = await dig(svc.port, ['-b', '127.0.5.2', '+ignore', 'web.service.sd.internal', 'A']);
    assert.deepEqual([first.answer.length, second.answer.length], [2, 2]);
    const limited = await dig(svc.port, from);
    assert.ok(limited.flags.includes('tc'), limited.text);
    assert.deepEqual(limited.answer, []);
    const retried = await dig(svc.port, ['-b', '127.0.5.1', 'web.service.sd.internal', 'A']);
    assert.match(retried.text, /Truncated, retrying in TCP mode/);
    assert.equal(retried.transport, 'TCP');
    assert.equal(retried.answer.length, 2);
    const other = await dig(svc.port, ['-b', '127.0.6.1', '+ignore', 'web.service.sd.internal', 'A']);
    assert.equal(other.answer.length, 2, 'another /24 has its own bucket');
    assert.ok((await metric(svc, /^svcdns_rate_limited_responses_total\{action="slipped"\} (\d+)/m)) >= 2);
  });
});

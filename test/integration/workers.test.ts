// workers: N (issue 5): several threads answer on one address via SO_REUSEPORT from replicas of the main store.
// Real UDP/TCP from many source ports, so the kernel spreads the queries over every worker.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';

const D = 'sd.internal';
const services = (addrs: string[]) =>
  `services:\n  - name: web\n    instances:\n${addrs.map((a) => `      - { address: ${a}, port: 8080 }`).join('\n')}\n  - name: db\n    instances: []\n`;

function write(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** Ask from `n` fresh sockets (distinct source ports → spread over the workers by the kernel's hash). */
async function fromMany(port: number, n: number, name: string, type = 'A', tcp = false) {
  return Promise.all(Array.from({ length: n }, () => query(port, name, type, { tcp })));
}

describe('workers (issue 5 item 2)', () => {
  let dir: string;
  let s: TestServer;
  const file = () => join(dir, 'services.yaml');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'svcdns-workers-'));
    write(file(), services(['10.0.0.1', '10.0.0.2']));
    s = await startServer({ workers: 2, backends: [{ type: 'file', path: file(), debounceMs: 10 }] }, { configDir: dir });
    await waitFor(async () => rcode(await query(s.port, `web.service.${D}`, 'A')) === 'NOERROR');
  });
  after(async () => {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every worker answers per §2.1/§3.2/§5.1/§5.3, over UDP and TCP', async () => {
    assert.equal(s.app.workers?.live, 2);
    for (const r of await fromMany(s.port, 40, `web.service.${D}`)) assert.deepEqual(answerData(r), ['10.0.0.1', '10.0.0.2']);
    for (const r of await fromMany(s.port, 10, `web.service.${D}`, 'SRV', true)) assert.equal(r.answers!.length, 2);
    for (const r of await fromMany(s.port, 10, `nope.service.${D}`)) assert.equal(rcode(r), 'NXDOMAIN');
    for (const r of await fromMany(s.port, 10, `db.service.${D}`)) assert.equal(r.answers!.length, 0);
  });

  it('a change in the main store reaches every worker (§6.4)', async () => {
    write(file(), services(['10.0.0.9']));
    await waitFor(async () => (await fromMany(s.port, 40, `web.service.${D}`)).every((r) => answerData(r).join() === '10.0.0.9'));
  });

  it('DNS metrics from all workers are summed in /metrics', async () => {
    const before = await s.app.metrics.text();
    const count = (t: string) => Number(/svcdns_dns_responses_total\{[^}]*type="TXT",rcode="NOERROR",transport="udp"\} (\d+)/.exec(t)?.[1] ?? 0);
    await fromMany(s.port, 30, `web.service.${D}`, 'TXT');
    assert.equal(count(await s.app.metrics.text()) - count(before), 30);
  });

  it('a worker that dies is restarted while its sibling keeps answering', async () => {
    await s.app.workers!.kill(0);
    // Right after the death the surviving worker answers everything (the kernel re-hashes flows).
    for (const r of await fromMany(s.port, 20, `web.service.${D}`)) assert.equal(rcode(r), 'NOERROR');
    await waitFor(() => s.app.workers!.live === 2);
    // The restarted worker got the full state: every source port gets the current data.
    for (const r of await fromMany(s.port, 40, `web.service.${D}`)) assert.deepEqual(answerData(r), ['10.0.0.9']);
  });
});

describe('workers before the first sync (§5.4)', () => {
  it('answer SERVFAIL until the backend syncs, then the data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svcdns-workers-'));
    const path = join(dir, 'later.yaml');
    const s = await startServer({ workers: 2, backends: [{ type: 'file', path, debounceMs: 10 }] }, { configDir: dir });
    try {
      for (const r of await fromMany(s.port, 20, `web.service.${D}`)) assert.equal(rcode(r), 'SERVFAIL');
      write(path, services(['10.0.0.5']));
      await waitFor(async () => (await fromMany(s.port, 20, `web.service.${D}`)).every((r) => answerData(r).join() === '10.0.0.5'));
    } finally {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('workers: review regressions', () => {
  it('§5.4 a Consul backend that learned its datacenter but has not synced: workers answer SERVFAIL for it, NXDOMAIN elsewhere', async () => {
    const { ConsulFake } = await import('../fakes/consul-fake.ts');
    const fake = await ConsulFake.start({ datacenter: 'dc1' });
    fake.failNext(100_000, 500, /catalog/); // the agent answers /v1/agent/self; the catalog keeps failing
    const s = await startServer({ workers: 2, backends: [{ type: 'consul', address: fake.address }] });
    try {
      // Once /v1/agent/self has named dc1, the claim narrows to dc1 (plus unscoped names).
      await waitFor(async () => (await fromMany(s.port, 10, `web.service.dc9.${D}`)).every((r) => rcode(r) === 'NXDOMAIN'));
      for (const r of await fromMany(s.port, 20, `web.service.dc1.${D}`)) assert.equal(rcode(r), 'SERVFAIL');
      for (const r of await fromMany(s.port, 20, `web.service.${D}`)) assert.equal(rcode(r), 'SERVFAIL');
    } finally {
      await s.stop();
      await fake.close();
    }
  });

  it('a worker restarting across a reload and a data change comes back with both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svcdns-workers-'));
    const path = join(dir, 'services.yaml');
    write(path, services(['10.0.0.1']));
    const raw = { workers: 2, backends: [{ type: 'file', path, debounceMs: 10 }] };
    const s = await startServer(raw, { configDir: dir });
    try {
      await waitFor(async () => (await fromMany(s.port, 10, `web.service.${D}`)).every((r) => answerData(r).join() === '10.0.0.1'));
      const { validateConfig } = await import('../../src/config/load.ts');
      await s.app.workers!.kill(1);
      // While worker 1 is down (restart backoff ≥ 50 ms): new data and new answer options.
      write(path, services(['10.0.0.2']));
      await s.app.reload(validateConfig({ ...raw, listen: '127.0.0.1:0', ttlSeconds: 77 }, 'test-config'));
      await waitFor(() => s.app.workers!.live === 2);
      await waitFor(async () => (await fromMany(s.port, 40, `web.service.${D}`)).every((r) => answerData(r).join() === '10.0.0.2' && r.answers![0]!.ttl === 77));
    } finally {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

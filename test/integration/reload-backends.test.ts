// Integration tests of config reload (App.reload) on the real server: unchanged backends keep running and keep
// answering through the reload (no query lost, no SERVFAIL), changed ones are re-created, removed ones vanish,
// added ones sync; answer options apply at once (the cache is dropped); socket keys are reported, not applied;
// the query log can be switched on and off. Plus the pure diff (planReload).

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { planReload, ReloadError } from '../../src/config/reload.ts';
import { ConsulFake } from '../fakes/consul-fake.ts';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';

const svc = (name: string, addr: string) => `services:\n  - name: ${name}\n    instances:\n      - { address: ${addr}, port: 80 }\n`;
const cfg = (raw: Record<string, unknown>) => validateConfig({ listen: '127.0.0.1:0', ...raw }, 'reload-test');
const fileBackend = (name: string, file: string, scope: string) => ({ type: 'file', name, path: file, defaultScope: scope, debounceMs: 0 });

describe('planReload (pure diff)', () => {
  const base = { backends: [fileBackend('a', 'a.yaml', 'as'), fileBackend('b', 'b.yaml', 'bs'), fileBackend('c', 'c.yaml', 'cs')] };
  it('matches backends by name; deep-equal entries are kept', () => {
    const p = planReload(cfg(base), cfg({ backends: [fileBackend('a', 'a.yaml', 'as'), fileBackend('b', 'b2.yaml', 'bs'), fileBackend('d', 'd.yaml', 'ds')] }));
    assert.deepEqual(p.keep, ['a']);
    assert.deepEqual(p.change.map((b) => b.name), ['b']);
    assert.deepEqual(p.add.map((b) => b.name), ['d']);
    assert.deepEqual(p.remove, ['c']);
    assert.equal(p.answerChanged, false);
    assert.deepEqual(p.restartRequired, []);
  });
  it('answer keys rebuild the processor; listen/tcp/admin need a restart; log and queryLog apply live', () => {
    const p = planReload(
      cfg(base),
      cfg({ ...base, ttlSeconds: 30, listen: '127.0.0.1:5353', tcp: { idleTimeoutMs: 500 }, admin: { enabled: false }, log: { level: 'debug' }, queryLog: { enabled: true } }),
    );
    assert.equal(p.answerChanged, true);
    assert.deepEqual([...p.restartRequired].sort(), ['admin', 'listen', 'tcp']);
    assert.equal(p.logLevelChanged, true);
    assert.equal(p.queryLogChanged, true);
    assert.deepEqual(p.keep, ['a', 'b', 'c']);
  });
  it('an identical config changes nothing', () => {
    const p = planReload(cfg(base), cfg(base));
    assert.deepEqual([p.change, p.add, p.remove, p.restartRequired], [[], [], [], []]);
    assert.equal(p.answerChanged || p.logLevelChanged || p.queryLogChanged, false);
  });
});

describe('App.reload on a running server', () => {
  let dir: string;
  let srv: TestServer;
  const raw = () => ({ backends: [fileBackend('a', 'a.yaml', 'as'), fileBackend('b', 'b.yaml', 'bs'), fileBackend('c', 'c.yaml', 'cs')] });

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'svcdns-reload-'));
    await writeFile(path.join(dir, 'a.yaml'), svc('web', '10.0.0.1'));
    await writeFile(path.join(dir, 'b.yaml'), svc('web', '10.0.0.2'));
    await writeFile(path.join(dir, 'b2.yaml'), svc('web', '10.0.0.22'));
    await writeFile(path.join(dir, 'c.yaml'), svc('web', '10.0.0.3'));
    await writeFile(path.join(dir, 'd.yaml'), svc('web', '10.0.0.4'));
    srv = await startServer(raw(), { configDir: dir });
    for (const s of ['as', 'bs', 'cs']) {
      await waitFor(async () => rcode(await query(srv.port, `web.service.${s}.sd.internal`, 'A')) === 'NOERROR');
    }
  });
  after(async () => {
    await srv.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps unchanged backends answering through the reload; re-creates changed, drops removed, starts added', async () => {
    const a0 = srv.app.backends.find((b) => b.name === 'a');
    const b0 = srv.app.backends.find((b) => b.name === 'b');
    assert.ok(a0 && b0);

    // Hammer backend a's name over UDP and TCP while the reload runs: every query must be answered, correctly.
    let reloading = true;
    const results: string[] = [];
    const hammer = (async () => {
      for (let i = 0; reloading || i < 20; i++) {
        const r = await query(srv.port, 'web.service.as.sd.internal', 'A', { tcp: i % 2 === 1, timeoutMs: 1000 });
        results.push(`${rcode(r)} ${answerData(r, 'A').join(',')}`);
      }
    })();
    let plan;
    try {
      plan = await srv.app.reload(
        cfg({ backends: [fileBackend('a', 'a.yaml', 'as'), fileBackend('b', 'b2.yaml', 'bs'), fileBackend('d', 'd.yaml', 'ds')] }),
      );
    } finally {
      reloading = false; // also when the reload failed: the loop must not outlive the test
      await hammer;
    }

    assert.deepEqual(plan.keep, ['a']);
    assert.ok(results.length >= 20);
    assert.deepEqual([...new Set(results)], ['NOERROR 10.0.0.1'], 'backend a answered every query, unchanged');
    assert.equal(srv.app.backends.find((b) => b.name === 'a'), a0, 'the unchanged backend object still runs');
    const b1 = srv.app.backends.find((b) => b.name === 'b');
    assert.ok(b1 && b1 !== b0, 'the changed backend was re-created');
    assert.deepEqual(srv.app.backends.map((b) => b.name).sort(), ['a', 'b', 'd']);

    await waitFor(async () => answerData(await query(srv.port, 'web.service.bs.sd.internal', 'A'), 'A').join() === '10.0.0.22');
    await waitFor(async () => answerData(await query(srv.port, 'web.service.ds.sd.internal', 'A'), 'A').join() === '10.0.0.4');
    assert.equal(rcode(await query(srv.port, 'web.service.cs.sd.internal', 'A')), 'NXDOMAIN', 'removed backend: its scope is gone');
    assert.deepEqual(srv.app.store.status().map((s) => s.name).sort(), ['a', 'b', 'd']);
    assert.equal(srv.app.store.status().find((s) => s.name === 'a')!.state, 'synced');
    const m = await srv.app.metrics.text();
    assert.match(m, /svcdns_config_reloads_total\{result="success"\} 1\b/);
  });

  it('answer options apply at once, even to names already cached', async () => {
    const before = await query(srv.port, 'web.service.as.sd.internal', 'A');
    assert.equal(before.answers![0]!.ttl, 5);
    await srv.app.reload(cfg({ ...raw(), backends: srv.app.config.backends, ttlSeconds: 42 }));
    const afterR = await query(srv.port, 'web.service.as.sd.internal', 'A');
    assert.equal(afterR.answers![0]!.ttl, 42);
    assert.equal(srv.app.config.ttlSeconds, 42);
  });

  it('socket keys are reported as restart-required and keep their running values', async () => {
    const plan = await srv.app.reload(cfg({ backends: srv.app.config.backends, ttlSeconds: 42, listen: '127.0.0.1:1' }));
    assert.deepEqual(plan.restartRequired, ['listen']);
    assert.deepEqual(srv.app.config.listen, [{ host: '127.0.0.1', port: 0 }]);
    assert.equal(rcode(await query(srv.port, 'web.service.as.sd.internal', 'A')), 'NOERROR', 'still on the old socket');
  });

  it('the query log switches on (sampleRate 1: every query) and off by reload', async () => {
    const log = path.join(dir, 'logs', 'queries.log');
    await srv.app.reload(cfg({ backends: srv.app.config.backends, ttlSeconds: 42, queryLog: { enabled: true, sampleRate: 1, path: 'logs/queries.log' } }));
    await query(srv.port, 'WeB.service.as.sd.internal', 'A');
    await query(srv.port, 'missing.service.as.sd.internal', 'SRV', { tcp: true });
    const lines = (await waitFor(async () => {
      const l = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
      return l.length >= 2 ? l : null;
    }))!;
    const recs = lines.map((l) => JSON.parse(l));
    assert.deepEqual(
      recs.map((r) => [r.event, r.qname, r.qtype, r.rcode, r.transport]),
      [
        ['query', 'web.service.as.sd.internal', 1, 0, 'udp'],
        ['query', 'missing.service.as.sd.internal', 33, 3, 'tcp'],
      ],
    );
    assert.equal(recs[0].answers, 1);
    assert.equal(typeof recs[0].us, 'number');
    assert.match(await srv.app.metrics.text(), /svcdns_query_log_records_total 2\b/);

    await srv.app.reload(cfg({ backends: srv.app.config.backends, ttlSeconds: 42 }));
    await query(srv.port, 'web.service.as.sd.internal', 'A');
    assert.match(await srv.app.metrics.text(), /svcdns_query_log_records_total 2\b/, 'off: nothing more recorded');
    assert.equal((await readFile(log, 'utf8')).split('\n').filter(Boolean).length, 2);
  });

  it('a query log that cannot be written stops recording; DNS keeps answering (no crash)', async () => {
    // Below a regular file: mkdir fails with ENOTDIR even for root.
    await srv.app.reload(cfg({ backends: srv.app.config.backends, ttlSeconds: 42, queryLog: { enabled: true, sampleRate: 1, path: 'a.yaml/sub/q.log' } }));
    for (let i = 0; i < 5; i++) {
      assert.equal(rcode(await query(srv.port, 'web.service.as.sd.internal', 'A')), 'NOERROR');
      await new Promise((r) => setImmediate(r));
    }
    await srv.app.reload(cfg({ backends: srv.app.config.backends, ttlSeconds: 42 }));
    assert.equal(rcode(await query(srv.port, 'web.service.as.sd.internal', 'A')), 'NOERROR');
  });
});

describe('App.reload: make-before-break for a changed backend (§5.4)', () => {
  const consul = (address: string, extra: Record<string, unknown> = {}) => ({ type: 'consul', name: 'consul', address, requestTimeoutMs: 60_000, ...extra });
  async function agent(addr: string): Promise<ConsulFake> {
    const f = await ConsulFake.start({ datacenter: 'dc1' });
    f.addNode({ name: 'node-a', address: addr });
    f.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080 });
    return f;
  }

  it('§5.4 the switch to the new instance is one step: old data, then new data, never SERVFAIL or NXDOMAIN in between', async () => {
    const oldAgent = await agent('10.0.0.1');
    const newAgent = await agent('10.0.0.2');
    const srv = await startServer({ backends: [consul(oldAgent.address)] });
    let reloading = true;
    let hammer: Promise<void> | null = null;
    try {
      await waitFor(async () => answerData(await query(srv.port, 'web.service.sd.internal', 'A'), 'A').join() === '10.0.0.1');
      const old = srv.app.backends[0];
      const seen: string[] = [];
      hammer = (async () => {
        while (reloading) {
          const r = await query(srv.port, 'web.service.sd.internal', 'A');
          seen.push(`${rcode(r)} ${answerData(r, 'A').join()}`);
        }
      })();
      await srv.app.reload(cfg({ backends: [consul(newAgent.address)] }));
      // Resolved: the new instance's data is what is served now, not eventually.
      assert.deepEqual(answerData(await query(srv.port, 'web.service.sd.internal', 'A'), 'A'), ['10.0.0.2']);
      reloading = false;
      await hammer;
      const firstNew = seen.indexOf('NOERROR 10.0.0.2');
      const before = firstNew === -1 ? seen : seen.slice(0, firstNew);
      const after = firstNew === -1 ? [] : seen.slice(firstNew);
      assert.deepEqual([...new Set(before)].filter((x) => x !== 'NOERROR 10.0.0.1'), [], `old data until the switch: ${[...new Set(seen)]}`);
      assert.deepEqual([...new Set(after)].filter((x) => x !== 'NOERROR 10.0.0.2'), [], `new data after it: ${[...new Set(seen)]}`);
      assert.notEqual(srv.app.backends[0], old);
      assert.equal(srv.app.store.status()[0]!.state, 'synced');
      // The old instance is stopped and detached: a change at its agent is not served any more.
      oldAgent.deregister('web-1');
      newAgent.register({ id: 'web-2', service: 'web', node: 'node-a', port: 9090 });
      await waitFor(async () => (await query(srv.port, '_web._tcp.service.sd.internal', 'SRV')).answers!.some((a) => a.data.port === 9090));
      assert.deepEqual(answerData(await query(srv.port, 'web.service.sd.internal', 'A'), 'A'), ['10.0.0.2']);
      assert.match(await srv.app.metrics.text(), /svcdns_config_reloads_total\{result="success"\} 1\b/);
    } finally {
      reloading = false; // also when an assertion failed: the loop must not outlive the test
      await hammer?.catch(() => {});
      await srv.stop();
      await oldAgent.close();
      await newAgent.close();
    }
  });

  it('§5.4 a new instance that does not sync within reload.firstSyncTimeoutMs fails the reload; the old one keeps answering', async () => {
    const oldAgent = await agent('10.0.0.1');
    const newAgent = await agent('10.0.0.2');
    newAgent.setHang(true);
    const srv = await startServer({ backends: [consul(oldAgent.address)] });
    try {
      await waitFor(async () => answerData(await query(srv.port, 'web.service.sd.internal', 'A'), 'A').join() === '10.0.0.1');
      const old = srv.app.backends[0];
      await assert.rejects(srv.app.reload(cfg({ reload: { firstSyncTimeoutMs: 100 }, backends: [consul(newAgent.address)] })), (err: ReloadError) => {
        assert.equal(err.code, 'SVCDNS_RELOAD_FIRST_SYNC_TIMEOUT');
        assert.deepEqual(err.backends, ['consul']);
        return true;
      });
      assert.equal(srv.app.backends[0], old);
      assert.deepEqual(answerData(await query(srv.port, 'web.service.sd.internal', 'A'), 'A'), ['10.0.0.1']);
      assert.match(await srv.app.metrics.text(), /svcdns_config_reloads_total\{result="failure"\} 1\b/);
      assert.equal(srv.app.config.backends[0]!.type === 'consul' && srv.app.config.backends[0]!.address, oldAgent.address, 'the running config stays');
      // The abandoned instance was stopped: releasing the agent now changes nothing that is served.
      newAgent.setHang(false);
      oldAgent.addNode({ name: 'node-b', address: '10.0.0.3' });
      oldAgent.register({ id: 'web-3', service: 'web', node: 'node-b', port: 8080 });
      await waitFor(async () => answerData(await query(srv.port, 'web.service.sd.internal', 'A'), 'A').sort().join() === '10.0.0.1,10.0.0.3');
    } finally {
      await srv.stop();
      await oldAgent.close();
      await newAgent.close();
    }
  });

  it('§5.4 a stop while a reload waits for a first sync abandons the reload and stops everything', async () => {
    const oldAgent = await agent('10.0.0.1');
    const newAgent = await agent('10.0.0.2');
    newAgent.setHang(true);
    const srv = await startServer({ backends: [consul(oldAgent.address)] });
    try {
      await waitFor(async () => rcode(await query(srv.port, 'web.service.sd.internal', 'A')) === 'NOERROR');
      const reloaded = srv.app.reload(cfg({ backends: [consul(newAgent.address)] }));
      await waitFor(() => newAgent.requests.length > 0);
      await srv.stop();
      await assert.rejects(reloaded, (err: ReloadError) => err.code === 'SVCDNS_RELOAD_STOPPING');
    } finally {
      await srv.stop();
      newAgent.setHang(false);
      await oldAgent.close();
      await newAgent.close();
    }
  });
});

// End-to-end through real DNS (UDP on 127.0.0.1:0) with the static-file backend: the sample file answers what
// config/services.yaml promises; a valid edit is answered within 500 ms (§6.4); an invalid edit keeps the old
// answer (§6.3); a missing file means SERVFAIL, never NXDOMAIN (§5.4).

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { startServer, waitFor } from '../helpers/server.ts';
import type { TestServer } from '../helpers/server.ts';

const SAMPLE_DIR = fileURLToPath(new URL('../../config/', import.meta.url));

describe('file backend over DNS: the sample config/services.yaml', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ backends: [{ type: 'file', path: 'services.yaml' }] }, { configDir: SAMPLE_DIR });
    await waitFor(() => !srv.app.store.anyPending);
  });
  after(() => srv.stop());

  it('web: the two healthy instances; tags select (§2.1, §2.2, §6.1)', async () => {
    const r = await query(srv.port, 'web.service.sd.internal', 'A');
    assert.equal(rcode(r), 'NOERROR');
    assert.deepEqual(answerData(r, 'A'), ['10.0.0.1', '10.0.0.2']);
    assert.deepEqual(answerData(await query(srv.port, 'primary.web.service.sd.internal', 'A'), 'A'), ['10.0.0.1']);
    assert.deepEqual(answerData(await query(srv.port, 'canary.web.service.sd.internal', 'A'), 'A'), ['10.0.0.2']);
  });

  it('api: A and AAAA, and SRV per named port (§2.3b, §3.2)', async () => {
    assert.deepEqual(answerData(await query(srv.port, 'api.service.sd.internal', 'A'), 'A'), ['10.0.1.1']);
    assert.deepEqual(answerData(await query(srv.port, 'api.service.sd.internal', 'AAAA'), 'AAAA'), ['fd00::1:1']);
    const srv2 = await query(srv.port, '_grpc._tcp.api.service.sd.internal', 'SRV');
    assert.deepEqual(answerData(srv2, 'SRV'), [
      '1 1 9090 10-0-1-1.addr.sd.internal',
      '1 1 9090 fd00--1-1.addr.sd.internal',
    ]);
  });

  it('db: registered with nothing healthy is NODATA, not NXDOMAIN (§5.3); staging scope answers (§2.1)', async () => {
    const r = await query(srv.port, 'db.service.sd.internal', 'A');
    assert.equal(rcode(r), 'NOERROR');
    assert.equal(r.answers?.length ?? 0, 0);
    assert.deepEqual(answerData(await query(srv.port, 'web.service.staging.sd.internal', 'A'), 'A'), ['10.1.0.1']);
  });
});

const V1 = `services:
  - name: web
    instances:
      - { address: 10.0.0.1, port: 8080 }
      - { address: 10.0.0.2, port: 8080 }
`;
const V2 = V1.replace('10.0.0.2', '10.0.0.4');

describe('file backend over DNS: hot reload', () => {
  let dir: string;
  let srv: TestServer | null;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'svcdns-filedns-'));
    srv = null;
  });
  afterEach(async () => {
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const webA = async (port: number) => answerData(await query(port, 'web.service.sd.internal', 'A'), 'A');

  it('a valid edit is answered; an invalid edit keeps the previous answer (§6.3, §6.4)', async () => {
    const file = path.join(dir, 'services.yaml');
    await writeFile(file, V1);
    srv = await startServer({ backends: [{ type: 'file', path: 'services.yaml' }] }, { configDir: dir });
    const s = srv;
    await waitFor(async () => (await webA(s.port)).length === 2);
    assert.deepEqual(await webA(s.port), ['10.0.0.1', '10.0.0.2']);

    // How fast the edit is answered is measured by npm run bench; here it must be answered.
    await writeFile(file, V2);
    await waitFor(async () => (await webA(s.port)).includes('10.0.0.4'), undefined, 5);
    assert.deepEqual(await webA(s.port), ['10.0.0.1', '10.0.0.4']);

    await writeFile(file, V2.replace('10.0.0.4', 'not-an-ip.example'));
    const st = (await waitFor(() => s.app.store.status().find((b) => b.state === 'stale')))!;
    assert.equal(st.lastError?.code, 'SVCDNS_BACKEND_BAD_DATA');
    assert.ok(st.lastError?.message.includes('services[0].instances[1].address'), st.lastError?.message);
    const r = await query(s.port, 'web.service.sd.internal', 'A');
    assert.equal(rcode(r), 'NOERROR');
    assert.deepEqual(answerData(r, 'A'), ['10.0.0.1', '10.0.0.4']);

    // A fix is served and clears the stale state.
    await writeFile(file, V1);
    await waitFor(async () => (await webA(s.port)).includes('10.0.0.2'));
    await waitFor(() => s.app.store.status().every((b) => b.state === 'synced'));
  });

  it('a missing services file answers SERVFAIL (never NXDOMAIN) until the file appears (§5.4)', async () => {
    srv = await startServer({ backends: [{ type: 'file', path: 'services.yaml' }] }, { configDir: dir });
    const s = srv;
    await waitFor(() => s.app.store.status()[0]?.lastError?.code === 'SVCDNS_BACKEND_CONFIG');
    assert.equal(rcode(await query(s.port, 'web.service.sd.internal', 'A')), 'SERVFAIL');
    assert.equal(rcode(await query(s.port, 'web.service.other.sd.internal', 'A')), 'SERVFAIL');
    await writeFile(path.join(dir, 'services.yaml'), V1);
    await waitFor(async () => (await webA(s.port)).length === 2);
    assert.equal(rcode(await query(s.port, 'nope.service.sd.internal', 'A')), 'NXDOMAIN');
  });
});

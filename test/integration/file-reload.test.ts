// Integration tests of the file backend's hot reload against a real temp directory: a valid edit is a new
// snapshot, an invalid edit is an error and the previous data stays (§6.3), rename-replace and Kubernetes
// ConfigMap symlink swaps are seen, a missing file is "not synced" until it appears (§5.4). Every wait is for an
// event (a snapshot, an error, a log event); how fast a reload lands is measured by the bench, not asserted here.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Backend } from '../../src/backends/backend.ts';
import { FILE_STEP, configSchema, create } from '../../src/backends/file/index.ts';
import { RecordingSink as Recorder, view } from '../helpers/recording-sink.ts';
import { waitFor } from '../helpers/server.ts';




const V1 = `services:
  - name: web
    instances:
      - { address: 10.0.0.1, port: 8080 }
      - { address: 10.0.0.2, port: 8080 }
      - { address: 10.0.0.3, port: 8080, healthy: false }
  - name: db
    instances:
      - { address: 10.0.2.1, port: 5432 }
`;
const V2 = V1.replace('10.0.0.2', '10.0.0.4');
const INVALID = V1.replace('10.0.0.2', '10.0.0.300');

let dir: string;
let backend: Backend | null;

/** The `event` fields the backends under test logged, in order (debug level included). */
let logged: string[] = [];
const logSink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString('utf8').split('\n')) if (line) logged.push(String((JSON.parse(line) as { event?: unknown }).event));
    done();
  },
});

function start(file = 'services.yaml', configDir = dir, extra: Record<string, unknown> = {}): Recorder {
  const config = configSchema.parse({ type: 'file', path: file, ...extra }); // default debounceMs (100)
  backend = create(config, { logger: pino({ level: 'debug' }, logSink), configDir, env: {} });
  const rec = new Recorder();
  backend.start(rec);
  return rec;
}

async function edit(file: string, text: string): Promise<void> {
  await writeFile(file, text);
}

/** Wait until the backend has logged `event` at least `count` times in all. */
async function loggedTimes(event: string, count: number): Promise<void> {
  await waitFor(() => logged.filter((e) => e === event).length >= count);
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'svcdns-file-'));
  backend = null;
  logged = [];
});
afterEach(async () => {
  await backend?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('file backend: hot reload', () => {
  it('serves the file, then a valid in-place edit, reusing unchanged Service objects', async () => {
    const file = path.join(dir, 'services.yaml');
    await writeFile(file, V1);
    const rec = start();
    const first = (await rec.next('snapshot', 0)).snap;
    assert.equal(first.defaultScope, 'default');
    assert.deepEqual(view(first), { 'default/web': ['10.0.0.1', '10.0.0.2'], 'default/db': ['10.0.2.1'] });

    const n = rec.events.length;
    await edit(file, V2);
    const ev = await rec.next('snapshot', n);
    assert.deepEqual(view(ev.snap), { 'default/web': ['10.0.0.1', '10.0.0.4'], 'default/db': ['10.0.2.1'] });
    // Only web changed: db keeps its identity so the store skips it.
    assert.equal(ev.snap.services.get('default/db'), first.services.get('default/db'));
    assert.notEqual(ev.snap.services.get('default/web'), first.services.get('default/web'));
    // ... and is told so (the changed-keys hint: an O(changes) merge), never on the first snapshot.
    assert.equal(first.changed, undefined);
    assert.deepEqual([...(ev.snap.changed ?? [])], ['default/web']);
    assert.equal(rec.events.filter((e) => e.kind === 'error').length, 0);
  });

  it('sees an editor-style rename-replace (write temp file, rename over)', async () => {
    const file = path.join(dir, 'services.yaml');
    await writeFile(file, V1);
    const rec = start();
    await rec.next('snapshot', 0);
    const n = rec.events.length;
    await writeFile(path.join(dir, '.services.yaml.swp'), V2);
    await rename(path.join(dir, '.services.yaml.swp'), file);
    const ev = await rec.next('snapshot', n);
    assert.deepEqual(view(ev.snap)['default/web'], ['10.0.0.1', '10.0.0.4']);
  });

  it('rejects an invalid edit with file+path+reason and keeps serving the previous data; a fix resyncs (§6.3)', async () => {
    const file = path.join(dir, 'services.yaml');
    await writeFile(file, V1);
    const rec = start();
    const first = (await rec.next('snapshot', 0)).snap;

    const n = rec.events.length;
    await edit(file, INVALID);
    const { err } = await rec.next('error', n);
    assert.equal(err.code, 'SVCDNS_BACKEND_BAD_DATA');
    assert.ok(err.message.includes('services.yaml'), err.message);
    assert.ok(err.message.includes('services[0].instances[1].address: "10.0.0.300" must be an IPv4 or IPv6 address'), err.message);
    assert.ok(err.message.includes('line 5'), err.message);

    // Restoring the last good content: no data change, but a snapshot must clear the stale state.
    const m = rec.events.length;
    await edit(file, V1);
    const ev = await rec.next('snapshot', m);
    // Nothing was emitted between the error and the fix: the store kept serving the first snapshot.
    assert.deepEqual(rec.events.slice(n).map((e) => e.kind), ['error', 'snapshot']);
    assert.equal(ev.snap.services.get('default/web'), first.services.get('default/web'));
    assert.equal(ev.snap.services.get('default/db'), first.services.get('default/db'));
  });

  it('does not emit a snapshot for unchanged content', async () => {
    const file = path.join(dir, 'services.yaml');
    await writeFile(file, V1);
    const rec = start();
    await rec.next('snapshot', 0);
    const n = rec.events.length;
    await writeFile(file, V1);
    await loggedTimes('reload_unchanged', 1); // read, and found unchanged
    await edit(file, V2);
    await rec.next('snapshot', n);
    await writeFile(file, V2);
    await loggedTimes('reload_unchanged', 2);
    assert.deepEqual(rec.events.slice(n).map((e) => e.kind), ['snapshot']);
    assert.deepEqual(view(rec.last)['default/web'], ['10.0.0.1', '10.0.0.4']);
  });

  it('a missing file is an error (not synced, §5.4) until it is created', async () => {
    const rec = start();
    const { err } = await rec.next('error', 0);
    assert.equal(err.code, 'SVCDNS_BACKEND_CONFIG');
    assert.ok(err.message.includes('services.yaml') && err.message.includes('ENOENT'), err.message);
    assert.equal(rec.events.filter((e) => e.kind === 'snapshot').length, 0);
    const n = rec.events.length;
    await edit(path.join(dir, 'services.yaml'), V1);
    const ev = await rec.next('snapshot', n);
    assert.deepEqual(view(ev.snap)['default/web'], ['10.0.0.1', '10.0.0.2']);
  });

  it('a deleted file keeps the last data (no empty snapshot) and reloads when it comes back', async () => {
    const file = path.join(dir, 'services.yaml');
    await writeFile(file, V1);
    const rec = start();
    await rec.next('snapshot', 0);
    const n = rec.events.length;
    await unlink(file);
    const { err } = await rec.next('error', n);
    assert.equal(err.code, 'SVCDNS_BACKEND_CONFIG');
    const m = rec.events.length;
    await writeFile(file, V1); // same content as before the deletion: still a snapshot, to leave the stale state
    const ev = await rec.next('snapshot', m);
    assert.deepEqual(rec.events.slice(n).filter((e) => e.kind === 'snapshot').length, 1);
    assert.deepEqual(view(ev.snap)['default/web'], ['10.0.0.1', '10.0.0.2']);
  });

  it('a missing directory is retried with backoff and loads once created', async () => {
    const sub = path.join(dir, 'later');
    const rec = start('later/services.yaml');
    const { err } = await rec.next('error', 0);
    assert.equal(err.code, 'SVCDNS_BACKEND_CONFIG');
    await mkdir(sub);
    await writeFile(path.join(sub, 'services.yaml'), V1);
    const ev = await rec.next('snapshot', 0);
    assert.deepEqual(view(ev.snap)['default/db'], ['10.0.2.1']);
  });

  it('follows a Kubernetes ConfigMap update (..data symlink swap)', async () => {
    // Layout made by the kubelet's atomic writer: services.yaml -> ..data/services.yaml, ..data -> ..<ts>.
    await mkdir(path.join(dir, '..2026_1'));
    await writeFile(path.join(dir, '..2026_1', 'services.yaml'), V1);
    await symlink('..2026_1', path.join(dir, '..data'));
    await symlink('..data/services.yaml', path.join(dir, 'services.yaml'));
    const rec = start();
    await rec.next('snapshot', 0);
    const n = rec.events.length;
    await mkdir(path.join(dir, '..2026_2'));
    await writeFile(path.join(dir, '..2026_2', 'services.yaml'), V2);
    await symlink('..2026_2', path.join(dir, '..data_tmp'));
    await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    const ev = await rec.next('snapshot', n);
    assert.deepEqual(view(ev.snap)['default/web'], ['10.0.0.1', '10.0.0.4']);
  });

  it('reads JSON files, and scoped services answer only in their scope', async () => {
    await writeFile(
      path.join(dir, 'services.json'),
      JSON.stringify({ services: [{ name: 'web', scope: 'staging', instances: [{ address: '10.1.0.1' }] }, { name: 'web', instances: [] }] }),
    );
    const rec = start('services.json', dir, { defaultScope: 'prod' });
    const snap = (await rec.next('snapshot', 0)).snap;
    assert.equal(snap.defaultScope, 'prod');
    assert.deepEqual(view(snap), { 'staging/web': ['10.1.0.1'], 'prod/web': [] });
  });

  it('a large reload is merged and published FILE_STEP services a turn; its snapshot is whole and names the one change (issue 11 item 7)', async () => {
    const n = 2 * FILE_STEP + 500;
    const json = (moved: string) =>
      JSON.stringify({
        services: Array.from({ length: n }, (_, k) => ({ name: `svc-${k}`, instances: [{ address: k === 7 ? moved : `10.${k >> 8}.${k & 255}.1`, port: 80 }] })),
      });
    const file = path.join(dir, 'services.json');
    await writeFile(file, json('10.250.0.1'));
    const rec = start('services.json');
    assert.equal((await rec.next('snapshot', 0)).snap.services.size, n);
    const passes = (backend as unknown as { passes: { publish: number; turns: number } }).passes;
    const turns0 = passes.turns;
    const publish0 = passes.publish;
    const from = rec.events.length;
    await edit(file, json('10.250.0.2'));
    const { snap } = await rec.snapshotWhere(from, (s) => view(s)['default/svc-7']?.[0] === '10.250.0.2');
    assert.equal(snap.services.size, n, 'every service of the file, not the part published so far');
    assert.deepEqual([...(snap.changed ?? [])], ['default/svc-7']);
    assert.equal(view(snap)['default/svc-0']?.[0], '10.0.0.1');
    // Three passes over the services (merging the parser's reply, the backend's tables, the snapshot), each
    // yielding to the event loop every FILE_STEP services: none of them runs as one long turn.
    assert.ok(passes.turns - turns0 >= 6, `yielded ${passes.turns - turns0} turns for ${n} services`);
    assert.equal(passes.publish - publish0, 1, 'one snapshot pass for one reload');
  });

  it('edits in quick succession of a large file: once an edit is served, no snapshot of an older one follows', async () => {
    const n = 2 * FILE_STEP + 500;
    const json = (gen: number) =>
      JSON.stringify({ services: Array.from({ length: n }, (_, k) => ({ name: `svc-${k}`, instances: [{ address: `10.${k >> 8}.${k & 255}.${k === 3 ? gen + 1 : 1}`, port: 80 }] })) });
    const file = path.join(dir, 'services.json');
    await writeFile(file, json(0));
    const rec = start('services.json', dir, { debounceMs: 0 });
    await rec.next('snapshot', 0);
    const from = rec.events.length;
    // Each write may land while the previous one is still being merged or published (debounceMs 0).
    for (let gen = 1; gen <= 5; gen++) {
      await edit(file, json(gen));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await rec.snapshotWhere(from, (s) => view(s)['default/svc-3']?.[0] === '10.0.3.6');
    // The edit each snapshot since the first edit serves (svc-3's address ends in gen + 1), in the order emitted.
    const gens = rec.events.slice(from).flatMap((e) => (e.kind === 'snapshot' ? [Number(view(e.snap)['default/svc-3']![0]!.split('.')[3]) - 1] : []));
    for (let i = 1; i < gens.length; i++) assert.ok(gens[i]! >= gens[i - 1]!, `a snapshot went back to an older edit: ${gens.join(', ')}`);
    for (const snap of rec.snapshots) assert.equal(snap.services.size, n, 'every snapshot is a whole file');
  });

  it('stop() during the reload of a large file: nothing is reported after it returns', async () => {
    const n = 2 * FILE_STEP + 500;
    const json = (last: number) => JSON.stringify({ services: Array.from({ length: n }, (_, k) => ({ name: `svc-${k}`, instances: [{ address: `10.${k >> 8}.${k & 255}.${last}`, port: 80 }] })) });
    const file = path.join(dir, 'services.json');
    await writeFile(file, json(1));
    const rec = start('services.json', dir, { debounceMs: 0 });
    await rec.next('snapshot', 0);
    await edit(file, json(2));
    // Stop once the edit's load has started (logged before the parser process runs), so the passes are cut short.
    await loggedTimes('reload_started', 2);
    const stopped = backend!;
    await stopped.stop();
    const n0 = rec.events.length;
    // A second backend on the same file marks when the stopped one would have reported the edit.
    const live = start('services.json', dir, { debounceMs: 0 });
    await live.next('snapshot', 0);
    await edit(file, json(3));
    await live.snapshotWhere(0, (s) => view(s)['default/svc-0']?.[0] === '10.0.0.3');
    assert.equal(rec.events.length, n0, 'nothing reported after stop()');
  });

  it('resolves relative paths against the config directory and stops cleanly (no handles left)', async () => {
    await mkdir(path.join(dir, 'conf'));
    await writeFile(path.join(dir, 'conf', 'services.yaml'), V1);
    const rec = start('services.yaml', path.join(dir, 'conf'));
    await rec.next('snapshot', 0);
    const stopped = backend!;
    await stopped.stop();
    await stopped.stop(); // idempotent
    // A second backend on the same file marks when the stopped one would have reported the edit.
    const live = start('services.yaml', path.join(dir, 'conf'));
    await live.next('snapshot', 0);
    const n = rec.events.length;
    await writeFile(path.join(dir, 'conf', 'services.yaml'), V2);
    await live.next('snapshot', 1);
    assert.equal(rec.events.length, n, 'nothing reported after stop()');
  });
});

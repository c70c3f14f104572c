// test/integration/file-slow-write: a services file rewritten in place by a slow writer is not served half-written
// (issue 10 #14). An in-place edit that removes services waits for `removalDebounceMs` of quiet; the completed
// file is applied; a file replaced by rename (the atomic write the README asks for) applies its removals at once.
// Everything waits for events (a log event, an answer that changed), never for a duration (§6.4).

import assert from 'node:assert/strict';
import { mkdtemp, open, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { answerData, query, rcode } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';

const D = 'sd.internal';
const WEB = `services:
  - name: web
    instances:
      - { address: 10.0.0.1, port: 8080 }
`;
const DB = `  - name: db
    instances:
      - { address: 10.0.2.1, port: 5432 }
`;
const CACHE = `  - name: cache
    instances:
      - { address: 10.0.3.1, port: 6379 }
`;

/** A logger whose JSON lines the test can wait on by their `event` field. */
function recordingLogger(): { logger: pino.Logger; events: () => { event?: string; [k: string]: unknown }[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), events: () => lines.map((l) => JSON.parse(l) as { event?: string }) };
}

async function withFileServer(removalDebounceMs: number, body: (srv: TestServer, file: string, events: ReturnType<typeof recordingLogger>['events']) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-slow-'));
  let srv: TestServer | null = null;
  try {
    const file = path.join(dir, 'services.yaml');
    await writeFile(file, WEB + DB);
    const log = recordingLogger();
    srv = await startServer(
      { backends: [{ type: 'file', path: 'services.yaml', debounceMs: 20, removalDebounceMs }] },
      { configDir: dir, extra: { logger: log.logger } },
    );
    const server = srv;
    await waitFor(async () => answerData(await query(server.port, `db.service.${D}`, 'A'), 'A').join() === '10.0.2.1');
    await body(srv, file, log.events);
  } finally {
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

test('a slow in-place writer: the half-written file that drops services is not applied while it pauses; the completed file is (issue 10 #14, §6.4)', { timeout: 120_000 }, async () => {
  // A quiet period far longer than the test: if the half-written file were applied, it would be by this fix failing.
  await withFileServer(600_000, async (srv, file, events) => {
    const writer = await open(file, 'w'); // in place: truncate, then write in two parts
    try {
      await writer.write(WEB);
      await writer.sync();
      // The backend has read the first part, which parses and drops db, and held it back.
      await waitFor(() => events().some((e) => e.event === 'reload_deferred' && (e.removed as string[]).includes('default/db')));
      assert.deepEqual(answerData(await query(srv.port, `db.service.${D}`, 'A'), 'A'), ['10.0.2.1'], 'db still answers while the writer pauses');
      await writer.write(DB + CACHE);
    } finally {
      await writer.close();
    }
    await waitFor(async () => answerData(await query(srv.port, `cache.service.${D}`, 'A'), 'A').join() === '10.0.3.1');
    assert.deepEqual(answerData(await query(srv.port, `db.service.${D}`, 'A'), 'A'), ['10.0.2.1']);
    assert.deepEqual(answerData(await query(srv.port, `web.service.${D}`, 'A'), 'A'), ['10.0.0.1']);
  });
});

test('an in-place edit that removes a service is applied once the file has stayed quiet for removalDebounceMs (issue 10 #14)', { timeout: 120_000 }, async () => {
  await withFileServer(200, async (srv, file, events) => {
    await writeFile(file, WEB); // in place, complete: db really goes
    await waitFor(() => events().some((e) => e.event === 'reload_deferred'));
    await waitFor(async () => rcode(await query(srv.port, `db.service.${D}`, 'A')) === 'NXDOMAIN');
  });
});

test('a file replaced by rename (atomic) applies its removals without the quiet period (issue 10 #14)', { timeout: 120_000 }, async () => {
  await withFileServer(600_000, async (srv, file, events) => {
    const tmp = `${file}.tmp`;
    await writeFile(tmp, WEB + CACHE);
    await rename(tmp, file);
    await waitFor(async () => rcode(await query(srv.port, `db.service.${D}`, 'A')) === 'NXDOMAIN');
    assert.deepEqual(answerData(await query(srv.port, `cache.service.${D}`, 'A'), 'A'), ['10.0.3.1']);
    assert.equal(events().filter((e) => e.event === 'reload_deferred').length, 0);
  });
});

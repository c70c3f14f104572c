// test/integration/file-large: large services files never stall DNS (issue 11 item 7). The file is read, parsed
// and validated in a child process: queries sent while a big file is being parsed are answered (with the data
// served before it, §6.3); a file over `maxFileBytes`, or one whose parse needs more than `parseHeapMb`, is
// reported with the file, the limit and the size, and the previous data stays served (§6.3). Everything waits for
// events (a log event, an answer that changed), never for a duration; how long a reload takes is the bench's
// business (bench/file-scale.ts).

import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { parseServicesFile } from '../../src/backends/file/parse.ts';
import { answerData, query } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';

const D = 'sd.internal';
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const small = (addr: string) => `services:\n  - name: web\n    instances:\n      - { address: ${addr}, port: 8080 }\n`;

/** `web` at `addr`, then `count` services of 10 instances each: a file that takes the YAML parser a while. */
function big(addr: string, count: number): string {
  const out = [small(addr).trimEnd()];
  for (let k = 0; k < count; k++) {
    out.push(`  - name: svc-${k}`, '    tags: [prod]', '    instances:');
    for (let j = 0; j < 10; j++) out.push(`      - address: 10.${(k >> 8) & 0xff}.${k & 0xff}.${j + 1}`, '        ports: { http: 8080 }');
  }
  return `${out.join('\n')}\n`;
}

interface LogLine {
  readonly event?: string;
  readonly err?: string;
  readonly [k: string]: unknown;
}

/** A debug-level logger whose JSON lines the test can wait on. */
function recordingLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

async function withFileServer(
  backend: Record<string, unknown>,
  body: (srv: TestServer, file: string, lines: LogLine[]) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-large-'));
  let srv: TestServer | null = null;
  try {
    const file = path.join(dir, 'services.yaml');
    await writeFile(file, small('10.0.0.1'));
    const log = recordingLogger();
    srv = await startServer({ backends: [{ type: 'file', path: 'services.yaml', debounceMs: 20, ...backend }] }, { configDir: dir, extra: { logger: log.logger } });
    const server = srv;
    await waitFor(async () => (await webA(server)) === '10.0.0.1');
    await body(srv, file, log.lines);
  } finally {
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function webA(srv: TestServer): Promise<string> {
  return answerData(await query(srv.port, `web.service.${D}`, 'A'), 'A').join();
}

/** Replace the file atomically (a new inode: applied at once, no removal quiet period). */
async function replace(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

test('queries sent while a large file is being parsed are answered, from the data served before it (issue 11 #7, §6.3)', { timeout: 120_000 }, async () => {
  await withFileServer({}, async (srv, file, lines) => {
    const started = () => lines.filter((l) => l.event === 'reload_started').length;
    const before = started(); // the first load's
    await replace(file, big('10.0.0.2', 3000));
    // Ask without pause until the new file is served. A query counts when it was sent after the reload began
    // and still got the old answer: on the DNS thread, the parse would hold every such query until it is done.
    let answeredDuringParse = 0;
    await waitFor(async () => {
      const sentDuringLoad = started() > before;
      const a = await webA(srv);
      if (sentDuringLoad && a === '10.0.0.1') answeredDuringParse++;
      return a === '10.0.0.2';
    }, 90_000, 0);
    assert.ok(answeredDuringParse >= 3, `queries answered while the file was parsed: ${answeredDuringParse}`);
    assert.equal(answerData(await query(srv.port, `svc-2999.service.${D}`, 'A'), 'A').length, 10);
  });
});

test('a file over maxFileBytes is not loaded: the error names the file, the size and the limit; the previous data stays (issue 11 #7, §6.3)', { timeout: 120_000 }, async () => {
  await withFileServer({ maxFileBytes: 2000 }, async (srv, file, lines) => {
    const text = big('10.0.0.2', 20);
    const size = Buffer.byteLength(text);
    assert.ok(size > 2000);
    await replace(file, text);
    const rejected = (await waitFor(() => lines.find((l) => l.event === 'reload_rejected')))!;
    assert.equal(rejected.code, 'SVCDNS_BACKEND_BAD_DATA');
    assert.match(rejected.err ?? '', new RegExp(`^${re(file)}: is ${size} bytes, over the limit of 2000 bytes \\(maxFileBytes\\)`));
    assert.equal(await webA(srv), '10.0.0.1');
    // Back under the limit: loaded.
    await replace(file, small('10.0.0.3'));
    await waitFor(async () => (await webA(srv)) === '10.0.0.3');
  });
});

test('a parse that needs more memory than parseHeapMb ends its process, is reported, and the previous data stays (issue 11 #7, §6.3)', { timeout: 120_000 }, async () => {
  await withFileServer({ parseHeapMb: 16 }, async (srv, file, lines) => {
    await replace(file, big('10.0.0.2', 1000));
    const rejected = (await waitFor(() => lines.find((l) => l.event === 'reload_rejected')))!;
    assert.equal(rejected.code, 'SVCDNS_BACKEND_BAD_DATA');
    assert.equal(rejected.err, `${file}: not loaded: parsing needs more than parseHeapMb (16 MB) of memory`);
    assert.equal(await webA(srv), '10.0.0.1');
    // The next edit gets a fresh parser process.
    await replace(file, small('10.0.0.3'));
    await waitFor(async () => (await webA(srv)) === '10.0.0.3');
  });
});

test('an invalid file parsed in the child process is reported exactly as the parser words it (file:line: path: value rule), the previous data stays (§6.3)', { timeout: 120_000 }, async () => {
  await withFileServer({}, async (srv, file, lines) => {
    const text = `${small('10.0.0.2')}  - name: db\n    instances:\n      - { address: 10.0.0.300, port: 5432 }\n      - { address: 10.0.0.4, port: 99999 }\n`;
    let expected = '';
    try {
      parseServicesFile(text, file, 'default'); // the file is named as the backend names it (absolute: outside the cwd)
    } catch (err) {
      expected = (err as Error).message;
    }
    assert.match(expected, /line 7: services\[1\]\.instances\[0\]\.address: "10\.0\.0\.300" must be an IPv4 or IPv6 address/);
    await replace(file, text);
    const rejected = (await waitFor(() => lines.find((l) => l.event === 'reload_rejected')))!;
    assert.equal(rejected.err, expected);
    assert.equal(await webA(srv), '10.0.0.1');
  });
});

// Integration: `cache.maxBytes` bounds the encoded-answer cache of the running server (issue 11 item 4: the cache
// is the part of RSS an operator sizes). 2,000 services are each asked once over UDP: with a 1 MiB budget the
// cache holds at most 1 MiB and evicts the oldest names; with the default budget the same names fill more than
// 1 MiB, so it is the configured value, not the data, that bounds the first run.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { answerData, query } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';

const D = 'sd.internal';
const N = 2000;
const ip = (k: number, j: number) => `10.${(k >> 8) & 255}.${k & 255}.${j + 1}`;

async function fill(cache: Record<string, unknown> | undefined): Promise<{ bytes: number; names: number }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-cache-budget-'));
  let srv: TestServer | null = null;
  try {
    const services = Array.from({ length: N }, (_, k) => ({
      name: `svc-${k}`,
      instances: Array.from({ length: 10 }, (_, j) => ({ address: ip(k, j), ports: { http: 8080 } })),
    }));
    await writeFile(path.join(dir, 'services.json'), JSON.stringify({ services }));
    srv = await startServer({ ...(cache ? { cache } : {}), backends: [{ type: 'file', path: 'services.json' }] }, { configDir: dir });
    const s = srv;
    await waitFor(async () => answerData(await query(s.port, `svc-${N - 1}.service.${D}`, 'A'), 'A').length === 10);
    for (let k = 0; k < N; k++) {
      const r = await query(s.port, `svc-${k}.service.${D}`, 'A');
      assert.equal(answerData(r, 'A').length, 10, `svc-${k}`);
    }
    return { bytes: s.app.processor.cachedBytes, names: s.app.processor.cachedNames };
  } finally {
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

test('cache.maxBytes bounds the answer cache: 1 MiB holds fewer names than 2,000 asked; the default holds them all', { timeout: 120_000 }, async () => {
  const small = await fill({ maxBytes: 1_048_576 });
  assert.ok(small.bytes > 0 && small.bytes <= 1_048_576, `1 MiB budget: cache holds ${small.bytes} bytes`);
  assert.ok(small.names < N, `1 MiB budget evicted names: ${small.names} of ${N} kept`);
  const dflt = await fill(undefined);
  assert.equal(dflt.names, N, 'the default budget (32 MiB) keeps every name');
  assert.ok(dflt.bytes > 1_048_576, `the same names take ${dflt.bytes} bytes: more than the small budget`);
});

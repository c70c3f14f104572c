// Integration test of end-to-end propagation (issue 14 #4): the real app with a real file backend in a temp
// dir; a change to the file is timed from its change notification to the first DNS answer that reflects it, as
// `svcdns_propagation_seconds{backend}` on /metrics. Observed once per change, not per query.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { answerData, query } from '../helpers/dns-client.ts';
import { startServer, waitFor, type TestServer } from '../helpers/server.ts';

/** The file backend waits this long after a change notification before reading: a floor under the measured time. */
const DEBOUNCE_MS = 300;

const file = (addr: string) => `services:\n  - name: web\n    instances:\n      - { address: ${addr}, port: 8080 }\n`;

async function metricsText(srv: TestServer): Promise<string> {
  const a = srv.app.adminAddress;
  assert.ok(a, 'admin server is running');
  const res = await fetch(`http://${a.host}:${a.port}/metrics`);
  return res.text();
}

function sample(text: string, name: string, backend: string): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_:][a-z0-9_:]*)\{(.*)\} (\S+)$/i.exec(line);
    if (m && m[1] === name && m[2]!.split(',').includes(`backend="${backend}"`)) return Number(m[3]);
  }
  return undefined;
}

describe('end-to-end propagation (issue 14 #4)', () => {
  it('svcdns_propagation_seconds{backend} times a file change from its notification (debounce included) to the first answer reflecting it, once per change', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-prop-'));
    let srv: TestServer | null = null;
    try {
      await writeFile(path.join(dir, 'services.yaml'), file('10.0.0.1'));
      srv = await startServer(
        { admin: { listen: '127.0.0.1:0' }, backends: [{ type: 'file', name: 'static', path: 'services.yaml', debounceMs: DEBOUNCE_MS }] },
        { configDir: dir, extra: { serveAdmin: true } },
      );
      const s = srv;
      await waitFor(async () => answerData(await query(s.port, 'web.service.sd.internal', 'A')).includes('10.0.0.1'));
      const before = await metricsText(s);
      const count0 = sample(before, 'svcdns_propagation_seconds_count', 'static') ?? 0;
      const sum0 = sample(before, 'svcdns_propagation_seconds_sum', 'static') ?? 0;
      const t0 = performance.now();
      await writeFile(path.join(dir, 'services.yaml'), file('10.0.0.2'));
      // The first answer with the new address: the change reached DNS.
      await waitFor(async () => answerData(await query(s.port, 'web.service.sd.internal', 'A')).includes('10.0.0.2'));
      const upper = (performance.now() - t0) / 1000;
      // More answers of the same generation observe nothing more.
      for (let i = 0; i < 5; i++) await query(s.port, 'web.service.sd.internal', 'A');
      const text = await metricsText(s);
      assert.match(text, /# TYPE svcdns_propagation_seconds histogram/);
      const count = sample(text, 'svcdns_propagation_seconds_count', 'static');
      const sum = sample(text, 'svcdns_propagation_seconds_sum', 'static');
      assert.equal(count, count0 + 1, 'one observation for the one change');
      assert.ok(sum !== undefined);
      const observed = sum - sum0;
      // Starts at the change notification (so it includes the debounce), after our write began, and ends at the
      // answer the test received.
      assert.ok(observed >= (0.9 * DEBOUNCE_MS) / 1000, `observed ${observed} s includes the ${DEBOUNCE_MS} ms debounce after the notification`);
      assert.ok(observed <= upper, `observed ${observed} s, inside the ${upper} s from write to answer`);
    } finally {
      await srv?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// e2e test of the admin status page (issue 14 #3) in a real headless Chromium (Debian `chromium`, driven by
// playwright-core): the real app with a real file backend in a temp dir; the page renders backends, services,
// instances (healthy, and unhealthy with the reason: Service.unhealthy, §6.1), cache and propagation figures; a
// registry change (the file rewritten: an instance added, then one marked unhealthy) appears without a reload; a
// registry name carrying markup is shown as text, never run or parsed.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { HANG_DEADLINE_MS } from '../helpers/deadline.ts';
import { answerData, query } from '../helpers/dns-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { ConsulFake } from '../fakes/consul-fake.ts';
import { requireTool } from './harness.ts';

// A served name must be a DNS label, so markup from the registry reaches the page through what the backend
// reports about it: the file backend's error quotes the offending service name (shown as the last error).
const HOSTILE = '<img src=x onerror=window.__pwned=1>';

/** `web` with these addresses (a trailing `!` marks the instance `healthy: false`), and `empty` with none healthy. */
const file = (addrs: string[]) =>
  `services:\n  - name: web\n    instances:\n${addrs.map((a) => `      - { address: ${a.replace('!', '')}, port: 8080, tags: [blue]${a.endsWith('!') ? ', healthy: false' : ''} }\n`).join('')}` +
  `  - name: empty\n    instances:\n      - { address: 10.0.9.9, port: 80, healthy: false }\n`;

/** Debian's chromium with a fresh profile (playwright-core passes it as --user-data-dir). */
async function launch(profileDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: requireTool('chromium'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: HANG_DEADLINE_MS,
  });
}

/** The server's status page in a new tab; `errors` collects the page's script errors. */
async function openStatusPage(browser: BrowserContext, srv: TestServer): Promise<{ page: Page; errors: string[] }> {
  const a = srv.app.adminAddress!;
  const page = await browser.newPage();
  page.setDefaultTimeout(HANG_DEADLINE_MS);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://${a.host}:${a.port}/`);
  return { page, errors };
}

describe('status page in headless Chromium (issue 14 #3)', () => {
  it('renders backends, services with healthy instances, cache and propagation, follows a registry change live, and shows registry text as text', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-status-'));
    let srv: TestServer | null = null;
    let browser: BrowserContext | null = null;
    try {
      await writeFile(path.join(dir, 'services.yaml'), file(['10.0.0.1']));
      srv = await startServer(
        { admin: { listen: '127.0.0.1:0' }, backends: [{ type: 'file', name: 'static', path: 'services.yaml', debounceMs: 0 }] },
        { configDir: dir, extra: { serveAdmin: true } },
      );
      browser = await launch(path.join(dir, 'chromium-profile'));
      const { page, errors } = await openStatusPage(browser, srv);

      // Rendering: the backend row, the service with its instance, the unhealthy-only service flagged.
      const backend = page.locator('#backends tr[data-backend="static"]');
      await backend.locator('text=synced').waitFor();
      assert.match(await backend.innerText(), /static\s+file\s+synced/);
      const web = page.locator('#services tr[data-service="web"][data-scope="default"]');
      await web.locator('text=10.0.0.1 8080/tcp').waitFor();
      assert.match(await web.innerText(), /1 healthy/);
      const empty = page.locator('#services tr[data-service="empty"][data-scope="default"]');
      assert.match(await empty.innerText(), /no healthy instance \(NODATA\), 1 unhealthy/);
      // The unhealthy instance is listed, distinctly, with its reason (file: `healthy: false`).
      assert.match(await empty.locator('.unhealthy[data-address="10.0.9.9"]').innerText(), /^10\.0\.9\.9 unhealthy: healthy: false$/);
      assert.equal(await web.locator('.unhealthy').count(), 0);
      assert.match(await page.locator('#cache').innerText(), /hits\s+\d+/);

      // A registry change appears on the page without a reload: wait for the DOM to change.
      await writeFile(path.join(dir, 'services.yaml'), file(['10.0.0.1', '10.0.0.2']));
      await web.locator('text=10.0.0.2 8080/tcp').waitFor();
      assert.match(await web.innerText(), /2 healthy/);
      // Propagation is observed by the first DNS answer of the new data: ask, then wait for the figures.
      assert.ok(answerData(await query(srv.port, 'web.service.sd.internal', 'A')).includes('10.0.0.2'));
      const prop = page.locator('#propagation tr[data-backend="static"]');
      await prop.waitFor();
      assert.match(await prop.innerText(), /^static\s+\d+\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+ ms$/);

      // A registry change that makes one instance unhealthy: it moves from the healthy list to the unhealthy one.
      await writeFile(path.join(dir, 'services.yaml'), file(['10.0.0.1', '10.0.0.2!']));
      const down = web.locator('.unhealthy[data-address="10.0.0.2"]');
      await down.waitFor();
      assert.match(await down.innerText(), /unhealthy: healthy: false$/);
      assert.equal(await down.locator('.reason').innerText(), 'healthy: false');
      assert.match(await web.innerText(), /1 healthy, 1 unhealthy/);
      assert.equal(await web.locator('div:not(.unhealthy)[data-address="10.0.0.2"]').count(), 0, 'no longer listed as healthy');
      assert.ok(!answerData(await query(srv.port, 'web.service.sd.internal', 'A')).includes('10.0.0.2'), 'DNS no longer answers it (§6.1)');

      // Escaping: a file naming a service with markup; the backend goes stale quoting it, shown as text.
      await writeFile(path.join(dir, 'services.yaml'), `services:\n  - name: ${JSON.stringify(HOSTILE)}\n    instances:\n      - { address: 10.0.0.3, port: 80 }\n`);
      await backend.locator('text=stale').waitFor();
      // (Expressions as strings: they run in the page, and this project's TypeScript has no DOM types.)
      await page.waitForFunction(`document.querySelector('#backends tr[data-backend="static"]')?.textContent?.includes(${JSON.stringify(HOSTILE)})`, undefined, { timeout: HANG_DEADLINE_MS });
      assert.equal(await page.locator('img').count(), 0, 'no element was parsed from registry text');
      assert.equal(await page.evaluate('typeof window.__pwned'), 'undefined', 'the onerror handler never ran');
      // Stale keeps serving the last good data (§6.3), and the page still shows it.
      assert.match(await web.innerText(), /1 healthy, 1 unhealthy/);
      if (process.env.SVCDNS_STATUS_SCREENSHOT) await page.screenshot({ path: process.env.SVCDNS_STATUS_SCREENSHOT, fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
      await srv?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an unhealthy Consul instance whose service ID carries markup is listed, with its check as the reason, as text (§6.1)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'svcdns-status-consul-'));
    const fake = await ConsulFake.start();
    let srv: TestServer | null = null;
    let browser: BrowserContext | null = null;
    try {
      fake.addNode({ name: 'node-a', address: '10.0.0.1' });
      fake.addNode({ name: 'node-b', address: '10.0.0.2' });
      fake.register({ id: 'web-1', service: 'web', node: 'node-a', port: 8080 });
      fake.register({ id: 'web-2', service: 'web', node: 'node-b', port: 8080 });
      srv = await startServer(
        { admin: { listen: '127.0.0.1:0' }, backends: [{ type: 'consul', name: 'reg', address: fake.address, waitSeconds: 2, requestTimeoutMs: 500 }] },
        { extra: { serveAdmin: true } },
      );
      browser = await launch(path.join(dir, 'chromium-profile'));
      const { page, errors } = await openStatusPage(browser, srv);
      const web = page.locator('#services tr[data-service="web"][data-scope="dc1"]');
      await web.locator('text=2 healthy').waitFor();
      assert.equal(await web.locator('.unhealthy').count(), 0);

      // A registry change: web-2's check goes critical, and an instance registered with markup as its ID fails.
      fake.setCheck('web-2', 'critical');
      fake.register({ id: HOSTILE, service: 'web', node: 'node-b', port: 9090, checks: [{ id: 'hostile-check', status: 'critical' }] });
      const down = web.locator('.unhealthy[data-address="10.0.0.2"]');
      await web.locator('.unhealthy').nth(1).waitFor();
      assert.match(await web.innerText(), /1 healthy, 2 unhealthy/);
      const texts = await down.allInnerTexts();
      assert.ok(texts.includes('10.0.0.2 web-2 unhealthy: check service:web-2 critical'), JSON.stringify(texts));
      assert.ok(texts.includes(`10.0.0.2 ${HOSTILE} unhealthy: check hostile-check critical`), JSON.stringify(texts));
      assert.equal(await page.locator('img').count(), 0, 'no element was parsed from registry text');
      assert.equal(await page.evaluate('typeof window.__pwned'), 'undefined', 'the onerror handler never ran');
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
      await srv?.stop();
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// backends/kubernetes/client: the backend loads @kubernetes/client-node without its generated API (issue 11
// item 9: the whole package costs ~0.5 s of start-up on an idle machine and ~50 MB of RSS). Checked in a fresh
// process, by recording every module URL loaded while the backend module loads.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HANG_DEADLINE_MS } from '../helpers/deadline.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** client-node files (relative to its dist/) loaded while `src/backends/kubernetes/index.ts` loads. */
function clientFilesLoaded(): string[] {
  const script = `
    import { registerHooks } from 'node:module';
    const seen = new Set();
    registerHooks({ load(url, c, next) { seen.add(url); return next(url, c); } });
    const m = await import(${JSON.stringify(new URL('src/backends/kubernetes/index.ts', `file://${ROOT}/`).href)});
    if (typeof m.create !== 'function') throw new Error('no create()');
    const { KubeConfig } = await import(${JSON.stringify(new URL('src/backends/kubernetes/client.ts', `file://${ROOT}/`).href)});
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    if (kc.getCurrentCluster()?.server !== 'https://127.0.0.1:1') throw new Error('KubeConfig does not work');
    const files = [...seen].filter((u) => u.includes('/@kubernetes/client-node/dist/')).map((u) => u.split('/dist/')[1]);
    process.stdout.write(JSON.stringify(files));
  `;
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], {
    cwd: ROOT, encoding: 'utf8', timeout: HANG_DEADLINE_MS,
  });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

describe('kubernetes client loading (issue 11 item 9)', () => {
  it('loads KubeConfig, Watch and ListWatch without the generated API classes and models', () => {
    const files = clientFilesLoaded();
    for (const used of ['config.js', 'watch.js', 'cache.js']) assert.ok(files.includes(used), `${used} is loaded`);
    const heavy = files.filter((f) => f === 'index.js' || f === 'api.js' || f === 'serializer.js' || f === 'gen/index.js' ||
      f.startsWith('gen/models/') || f.startsWith('gen/types/') || (f.startsWith('gen/apis/') && f !== 'gen/apis/exception.js'));
    assert.deepEqual(heavy, [], 'no generated API class or model is loaded');
  });
});

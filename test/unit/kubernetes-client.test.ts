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
function clientFilesLoaded(): { files: string[]; undici: number } {
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
    const undici = [...seen].filter((u) => u.includes('/node_modules/undici/'));
    process.stdout.write(JSON.stringify({ files, undici: undici.length }));
  `;
  const r = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], {
    cwd: ROOT, encoding: 'utf8', timeout: HANG_DEADLINE_MS,
  });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { files: string[]; undici: number };
}

describe('kubernetes client loading (issue 11 item 9)', () => {
  it('loads KubeConfig and ListWatch without the generated API classes and models, its Watch, or undici (issue 11 item 4)', () => {
    const { files, undici } = clientFilesLoaded();
    for (const used of ['config.js', 'cache.js']) assert.ok(files.includes(used), `${used} is loaded`);
    // The WATCH and LIST requests are made with node:https (client.ts): client-node's fetch-based Watch and HTTP
    // layer, and the npm undici package they need (~23 MB of RSS), stay unloaded.
    assert.ok(!files.includes('watch.js') && !files.includes('gen/http/isomorphic-fetch.js'), `client-node's fetch layer is not loaded: ${files.join(' ')}`);
    assert.equal(undici, 0, 'no module of the undici package is loaded');
    const heavy = files.filter((f) => f === 'index.js' || f === 'api.js' || f === 'serializer.js' || f === 'gen/index.js' ||
      f.startsWith('gen/models/') || f.startsWith('gen/types/') || (f.startsWith('gen/apis/') && f !== 'gen/apis/exception.js'));
    assert.deepEqual(heavy, [], 'no generated API class or model is loaded');
  });
});

// RBAC against real traffic: the API server fake records every (group, resource, verb) the real client-node
// informers send. Those must equal rbacRules(api) for both modes (cluster-wide and namespaced), and the
// shipped ClusterRole must cover every request of the shipped config's mode.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import pino from 'pino';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { configSchema, create, rbacRules } from '../../src/backends/kubernetes/index.ts';
import { KubeApiServerFake, RecordingSink, endpointSlice, legacyEndpoints } from '../fakes/kube-apiserver-fake.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const DEPLOY = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url));

async function traffic(cfg: Record<string, unknown>): Promise<Set<string>> {
  const fake = await KubeApiServerFake.start();
  fake.apply(endpointSlice({ namespace: 'prod', name: 'a-1', service: 'a', endpoints: [{ addresses: ['10.0.0.1'] }] }));
  fake.apply(legacyEndpoints({ namespace: 'prod', name: 'a', subsets: [{ addresses: ['10.0.0.1'], ports: [{ port: 80 }] }] }));
  const dir = tempDir('svcdns-rbac-');
  writeFileSync(join(dir, 'kc'), fake.kubeconfig());
  const b = create(configSchema.parse({ type: 'kubernetes', kubeconfig: 'kc', ...cfg }), { logger: pino({ level: 'silent' }), configDir: dir, env: {} }, { maxReconnectDelayMs: 50 });
  const sink = new RecordingSink();
  b.start(sink);
  const feeds = Math.max(1, (cfg.namespaces as unknown[] | undefined)?.length ?? 0); // one watch per namespace, or one
  try {
    await fake.waitFor(() => sink.snapshots.length > 0 && fake.openWatches === feeds, 'sync + watch');
    fake.expire('status'); // exercise the relist path too
    await fake.waitFor(() => fake.count('list') >= 2 * feeds && fake.openWatches === feeds, 'relist + watch');
  } finally {
    await b.stop();
    await fake.stop();
  }
  assert.ok(fake.requests.every((r) => r.status !== 403 && r.status !== 401));
  return new Set(fake.requests.map((r) => `${r.group}/${r.resource}:${r.verb}`));
}

const expected = (api: 'endpointslices' | 'endpoints') =>
  new Set(rbacRules(api).flatMap((r) => r.verbs.map((v) => `${r.apiGroup}/${r.resource}:${v}`)));

describe('kubernetes RBAC: requested = declared = granted', () => {
  for (const api of ['endpointslices', 'endpoints'] as const) {
    for (const namespaces of [[], ['prod', 'dev']]) {
      it(`api: ${api}, namespaces: [${namespaces.join(',')}] — the client's requests are exactly rbacRules(api)`, async () => {
        assert.deepEqual(await traffic({ api, namespaces }), expected(api));
      });
    }
  }

  it('the shipped ClusterRole covers every request the shipped config makes', async () => {
    const docs = (f: string) => parseAllDocuments(readFileSync(join(DEPLOY, f), 'utf8')).map((d) => d.toJS());
    const role = docs('clusterrole.yaml')[0] as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
    // The ConfigMap's content (configMapGenerator builds it from config/svcdns.yaml).
    const backend = (parseYaml(readFileSync(join(DEPLOY, 'config/svcdns.yaml'), 'utf8')) as { backends: Record<string, unknown>[] }).backends[0]!;
    const { type: _t, ...cfg } = backend;
    const used = await traffic(cfg);
    const granted = new Set(role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)))));
    for (const u of used) assert.ok(granted.has(u), `ClusterRole lacks ${u}`);
    assert.deepEqual(granted, used, 'and grants nothing unused');
  });
});

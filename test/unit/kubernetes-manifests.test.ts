// deploy/kubernetes/ is parsed and cross-checked: every file is valid YAML with the fields the API requires,
// the ConfigMap is a valid svcdns config, ports/probes/mounts agree with it, and the ClusterRole grants exactly
// what the backend requests (rbacRules from the code), so RBAC and code cannot drift apart.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { validateConfig } from '../../src/config/load.ts';
import { rbacRules } from '../../src/backends/kubernetes/index.ts';
import { SHUTDOWN_GRACE_MS } from '../../src/cli.ts';

const DIR = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

type Doc = Record<string, any>;

function load(): Map<string, Doc[]> {
  const out = new Map<string, Doc[]>();
  for (const f of readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort()) {
    const docs = parseAllDocuments(readFileSync(join(DIR, f), 'utf8'));
    for (const d of docs) assert.deepEqual(d.errors, [], `${f}: YAML errors`);
    out.set(f, docs.map((d) => d.toJS() as Doc).filter((d) => d !== null));
  }
  return out;
}

const files = load();
const all = [...files.values()].flat();
const one = (kind: string): Doc => {
  const found = all.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!;
};
const NAMESPACE = one('Namespace').metadata.name as string;

/** Normalise RBAC rules to a sorted set of "group/resource:verb". */
const grants = (rules: readonly { apiGroups?: string[]; apiGroup?: string; resources?: string[]; resource?: string; verbs: readonly string[] }[]) =>
  rules.flatMap((r) => (r.apiGroups ?? [r.apiGroup!]).flatMap((g) => (r.resources ?? [r.resource!]).flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)))).sort();

describe('deploy/kubernetes manifests', () => {
  it('every file parses; every object has apiVersion, kind, name; namespaced objects are in one namespace', () => {
    assert.ok(files.size >= 7);
    const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'Kustomization']);
    for (const [f, docs] of files) {
      assert.ok(docs.length > 0, f);
      for (const d of docs) {
        assert.equal(typeof d.apiVersion, 'string', `${f}: apiVersion`);
        assert.equal(typeof d.kind, 'string', `${f}: kind`);
        if (d.kind === 'Kustomization') continue;
        assert.match(d.metadata?.name ?? '', /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, `${f}: metadata.name`);
        if (!clusterScoped.has(d.kind)) assert.equal(d.metadata.namespace, NAMESPACE, `${f}: namespace`);
      }
    }
    const kust = one('Kustomization');
    assert.deepEqual([...kust.resources].sort(), [...files.keys()].filter((f) => f !== 'kustomization.yaml').sort());
  });

  it('the ConfigMap holds a valid svcdns config with a kubernetes backend', () => {
    const cfg = validateConfig(parseYaml(one('ConfigMap').data['svcdns.yaml']), 'configmap.yaml');
    assert.equal(cfg.backends.length, 1);
    assert.equal(cfg.backends[0]!.type, 'kubernetes');
  });

  it('the ClusterRole grants exactly what the backend requests (list, watch on what it reads), nothing more', () => {
    const cfg = validateConfig(parseYaml(one('ConfigMap').data['svcdns.yaml']), 'configmap.yaml');
    const b = cfg.backends[0] as { api: 'endpointslices' | 'endpoints' };
    const role = one('ClusterRole');
    assert.deepEqual(grants(role.rules), grants(rbacRules(b.api)));
    assert.deepEqual(grants(role.rules), ['discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch']);
    assert.ok(!JSON.stringify(role.rules).includes('*'), 'no wildcards');
  });

  it('binding, service account, Deployment and Service are wired to each other and to the config', () => {
    const cfg = validateConfig(parseYaml(one('ConfigMap').data['svcdns.yaml']), 'configmap.yaml');
    const sa = one('ServiceAccount');
    const binding = one('ClusterRoleBinding');
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: one('ClusterRole').metadata.name });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: NAMESPACE }]);

    const dep = one('Deployment');
    const pod = dep.spec.template.spec;
    assert.equal(dep.spec.replicas, 2);
    assert.deepEqual(dep.spec.selector.matchLabels, Object.fromEntries(Object.entries(dep.spec.template.metadata.labels).filter(([k]) => k in dep.spec.selector.matchLabels)));
    assert.equal(pod.serviceAccountName, sa.metadata.name);
    const c = pod.containers[0];
    // --config points into the ConfigMap mount, at its key.
    const cfgPath = c.args[c.args.indexOf('--config') + 1] as string;
    const mount = c.volumeMounts.find((m: Doc) => cfgPath.startsWith(`${m.mountPath}/`));
    const vol = pod.volumes.find((v: Doc) => v.name === mount.name);
    assert.equal(vol.configMap.name, one('ConfigMap').metadata.name);
    assert.equal(cfgPath.slice(mount.mountPath.length + 1), 'svcdns.yaml');
    // DNS ports = config listen port on UDP and TCP; probes hit the admin listener's /healthz and /readyz.
    const port = (name: string) => c.ports.find((p: Doc) => p.name === name);
    assert.equal(port('dns-udp').containerPort, cfg.listen[0]!.port);
    assert.equal(port('dns-udp').protocol, 'UDP');
    assert.equal(port('dns-tcp').containerPort, cfg.listen[0]!.port);
    assert.equal(port('dns-tcp').protocol, 'TCP');
    assert.equal(cfg.listen[0]!.host, '0.0.0.0');
    assert.equal(cfg.admin.listen.host, '0.0.0.0');
    assert.equal(port(c.readinessProbe.httpGet.port).containerPort, cfg.admin.listen.port);
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory);
    // Hardened: non-root, nothing to escalate, no capabilities (high port), read-only root.
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.equal(c.securityContext.capabilities.add, undefined);

    const svc = one('Service');
    assert.deepEqual(svc.spec.selector, dep.spec.selector.matchLabels);
    assert.deepEqual(svc.spec.ports.map((p: Doc) => `${p.port}/${p.protocol}`).sort(), ['53/TCP', '53/UDP']);
    for (const p of svc.spec.ports) {
      const target = port(p.targetPort);
      assert.ok(target, `targetPort ${p.targetPort} exists`);
      assert.equal(target.protocol, p.protocol);
    }
  });

  it('§5.4 shutdown fits the pod: lameduck 5 s in the ConfigMap, and the grace period covers preStop + lameduck + drain + the forced exit', () => {
    const cfg = validateConfig(parseYaml(one('ConfigMap').data['svcdns.yaml']), 'configmap.yaml');
    assert.equal(cfg.shutdown.lameDuckMs, 5000);
    const pod = one('Deployment').spec.template.spec;
    const c = pod.containers[0];
    // A preStop runs before SIGTERM and inside the same grace period: only a `sleep` hook has a known length.
    const preStop = c.lifecycle?.preStop;
    assert.ok(preStop === undefined || preStop.sleep !== undefined, 'a preStop hook, if any, is a sleep (its length counts below)');
    const preStopMs = (preStop?.sleep?.seconds ?? 0) * 1000;
    const forcedExitMs = 1000; // cli.ts: the exit is forced 1 s after lameduck + drain
    const neededMs = preStopMs + cfg.shutdown.lameDuckMs + SHUTDOWN_GRACE_MS + forcedExitMs;
    assert.equal(typeof pod.terminationGracePeriodSeconds, 'number');
    assert.ok(pod.terminationGracePeriodSeconds * 1000 > neededMs, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} s > ${neededMs} ms`);
    // The lameduck is what /readyz reports: the readiness probe is the one on /readyz.
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  });

  it('the Dockerfile is multi-stage on the official Node 24 image, runs as non-root, starts dist/cli.js', () => {
    const df = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const froms = [...df.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    assert.equal(froms.length, 2);
    assert.match(df, /^ARG NODE_IMAGE=node:24[-\w.]*$/m);
    assert.match(df, /^USER node$/m);
    assert.match(df, /^ENTRYPOINT \["node", "dist\/cli\.js"\]$/m);
    assert.match(df, /^CMD \["--config", "\/etc\/svcdns\/svcdns\.yaml"\]$/m);
    const dep = one('Deployment').spec.template.spec.containers[0];
    assert.deepEqual(dep.args, ['--config', '/etc/svcdns/svcdns.yaml']);
    const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8'));
    assert.equal(build.compilerOptions.outDir, 'dist', 'dist/cli.js is what `npm run build` emits');
  });
});

// deploy/kubernetes/ (and the overlays in deploy/kubernetes-overlays/) rendered as `kubectl kustomize` renders
// them, checked against the Kubernetes OpenAPI schemas (the kubernetes-models npm package: its validators are
// compiled from the Kubernetes OpenAPI spec with ajv) and cross-checked: the generated ConfigMap is a valid svcdns
// config, ports/probes/mounts/NetworkPolicy agree with it, the ClusterRole grants exactly what the backend
// requests (rbacRules from the code), the PrometheusRule carries deploy/prometheus/svcdns-rules.yaml. The
// rendering is done here (resources, configMapGenerator, images: what these kustomizations use) and, where
// kubectl is installed, compared with `kubectl kustomize`'s output.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { validateConfig } from '../../src/config/load.ts';
import { rbacRules } from '../../src/backends/kubernetes/index.ts';
import { SHUTDOWN_GRACE_MS } from '../../src/cli.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIR = join(ROOT, 'deploy/kubernetes');
const OVERLAYS = join(ROOT, 'deploy/kubernetes-overlays');

type Doc = Record<string, any>;

function parseFile(path: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  for (const d of docs) assert.deepEqual(d.errors, [], `${path}: YAML errors`);
  return docs.map((d) => d.toJS() as Doc).filter((d) => d !== null);
}

/** Stands for kustomize's content hash in generated names (compared modulo the hash). */
const HASH = 'hash';

/** Render a kustomization directory: its resources (files, or directories rendered recursively), its
 * configMapGenerator (name-<hash>, references from pod volumes renamed) and its `images:` overrides. */
function render(dir: string): Doc[] {
  const k = parseFile(join(dir, 'kustomization.yaml'))[0]!;
  const docs: Doc[] = [];
  for (const r of k.resources as string[]) {
    const p = resolve(dir, r);
    docs.push(...(statSync(p).isDirectory() ? render(p) : parseFile(p)));
  }
  const renamed = new Map<string, string>();
  for (const g of (k.configMapGenerator ?? []) as Doc[]) {
    const data: Record<string, string> = {};
    for (const f of g.files as string[]) {
      const [key, path] = f.includes('=') ? (f.split('=') as [string, string]) : [basename(f), f];
      data[key] = readFileSync(resolve(dir, path), 'utf8');
    }
    const name = `${g.name}-${HASH}`;
    renamed.set(g.name, name);
    docs.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: g.namespace, ...(g.options?.labels ? { labels: g.options.labels } : {}) }, data });
  }
  for (const d of docs) {
    const pod = d.kind === 'Deployment' ? d.spec.template.spec : null;
    if (!pod) continue;
    for (const v of pod.volumes ?? []) if (v.configMap && renamed.has(v.configMap.name)) v.configMap.name = renamed.get(v.configMap.name);
    for (const c of pod.containers) {
      const img = ((k.images ?? []) as Doc[]).find((i) => i.name === String(c.image).split(':')[0]);
      if (img) c.image = `${img.newName ?? img.name}:${img.newTag}`;
    }
  }
  return docs;
}

/** `kubectl kustomize dir` when kubectl is installed (null otherwise), generated names' hashes replaced by HASH. */
function kubectlKustomize(dir: string): Doc[] | null {
  const kubectl = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'kubectl')).find((p) => existsSync(p));
  if (!kubectl) return null;
  const r = spawnSync(kubectl, ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `kubectl kustomize ${dir}: ${r.stderr}`);
  const text = r.stdout.replace(/\bsvcdns-[a-z0-9]{10}\b/g, `svcdns-${HASH}`);
  return parseAllDocuments(text).map((d) => d.toJS() as Doc).filter((d) => d !== null);
}

const key = (d: Doc) => `${d.kind}/${d.metadata?.namespace ?? ''}/${d.metadata?.name}`;
const byKey = (docs: readonly Doc[]) => new Map(docs.map((d) => [key(d), d]));

/** The model class that validates each kind (schemas of Kubernetes 1.3x via kubernetes-models). */
const MODELS: Record<string, new (d: any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

function validateObject(d: Doc): void {
  const Model = MODELS[`${d.apiVersion}/${d.kind}`];
  assert.ok(Model, `a schema for ${d.apiVersion} ${d.kind}`);
  new Model(structuredClone(d)).validate();
}

const files = new Map(readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort().map((f) => [f, parseFile(join(DIR, f))]));
const base = render(DIR);
const overlay = (name: string) => render(join(OVERLAYS, name));
const one = (kind: string, docs: readonly Doc[] = base): Doc => {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!;
};
const NAMESPACE = one('Namespace').metadata.name as string;
const config = () => validateConfig(parseYaml(one('ConfigMap').data['svcdns.yaml']), 'config/svcdns.yaml');

/** Normalise RBAC rules to a sorted set of "group/resource:verb". */
const grants = (rules: readonly { apiGroups?: string[]; apiGroup?: string; resources?: string[]; resource?: string; verbs: readonly string[] }[]) =>
  rules.flatMap((r) => (r.apiGroups ?? [r.apiGroup!]).flatMap((g) => (r.resources ?? [r.resource!]).flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)))).sort();

describe('deploy/kubernetes manifests', () => {
  it('every file parses and is listed in the kustomization; every rendered object has a name and sits in one namespace', () => {
    const kust = files.get('kustomization.yaml')![0]!;
    assert.deepEqual([...kust.resources].sort(), [...files.keys()].filter((f) => f !== 'kustomization.yaml').sort());
    const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);
    for (const docs of [base, overlay('autoscaling'), overlay('prometheus-operator')]) {
      for (const d of docs) {
        assert.equal(typeof d.apiVersion, 'string', `${key(d)}: apiVersion`);
        assert.match(d.metadata?.name ?? '', /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, `${key(d)}: metadata.name`);
        if (!clusterScoped.has(d.kind)) assert.equal(d.metadata.namespace, NAMESPACE, `${key(d)}: namespace`);
      }
    }
    assert.deepEqual(base.map((d) => d.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'Namespace', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
  });

  it('the rendering here is what `kubectl kustomize` renders (base and overlays), where kubectl is installed', (t) => {
    for (const [dir, docs] of [[DIR, base], [join(OVERLAYS, 'autoscaling'), overlay('autoscaling')], [join(OVERLAYS, 'prometheus-operator'), overlay('prometheus-operator')]] as const) {
      const real = kubectlKustomize(dir);
      if (real === null) {
        t.diagnostic('kubectl not installed: compared with nothing (Debian: kubernetes-client)');
        return;
      }
      const mine = byKey(docs);
      assert.deepEqual([...byKey(real).keys()].sort(), [...mine.keys()].sort(), dir);
      for (const [k, d] of byKey(real)) assert.deepEqual(d, mine.get(k), `${dir}: ${k}`);
    }
  });

  it('every rendered object validates against the Kubernetes OpenAPI schema of its kind (kubernetes-models), and a broken one does not', () => {
    for (const d of [...base, ...overlay('autoscaling'), ...overlay('prometheus-operator')]) {
      assert.doesNotThrow(() => validateObject(d), `${key(d)} validates`);
    }
    // The validator is live: a wrong type and a missing required field fail.
    const dep = structuredClone(one('Deployment'));
    dep.spec.replicas = 'two';
    assert.throws(() => validateObject(dep), /replicas/);
    const dep2 = structuredClone(one('Deployment'));
    delete dep2.spec.selector;
    assert.throws(() => validateObject(dep2), /selector/);
    const np = structuredClone(one('NetworkPolicy'));
    np.spec.policyTypes = 'Ingress';
    assert.throws(() => validateObject(np), /policyTypes/);
  });

  it('the ConfigMap is generated from config/svcdns.yaml (an edit renames it and rolls the pods) and holds a valid config with a kubernetes backend', () => {
    const cm = one('ConfigMap');
    assert.equal(cm.metadata.name, `svcdns-${HASH}`, 'configMapGenerator: name with a content hash');
    const pod = one('Deployment').spec.template.spec;
    assert.ok(pod.volumes.some((v: Doc) => v.configMap?.name === cm.metadata.name), 'the Deployment mounts the generated name');
    const cfg = config();
    assert.equal(cfg.backends.length, 1);
    assert.equal(cfg.backends[0]!.type, 'kubernetes');
    assert.notEqual(cfg.watchConfig, true, 'rolled by the generator, not reloaded in place');
  });

  it('the ClusterRole grants exactly what the backend requests (list, watch on what it reads), nothing more', () => {
    const b = config().backends[0] as { api: 'endpointslices' | 'endpoints' };
    const role = one('ClusterRole');
    assert.deepEqual(grants(role.rules), grants(rbacRules(b.api)));
    assert.deepEqual(grants(role.rules), ['discovery.k8s.io/endpointslices:list', 'discovery.k8s.io/endpointslices:watch']);
    assert.ok(!JSON.stringify(role.rules).includes('*'), 'no wildcards');
  });

  it('binding, service account, Deployment and Service are wired to each other and to the config', () => {
    const cfg = config();
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

  it('the pod is spread over zones and nodes, has a startup probe, a priority class, and memory that fits the measured RSS', () => {
    const dep = one('Deployment');
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    const keys = pod.topologySpreadConstraints.map((t: Doc) => t.topologyKey).sort();
    assert.deepEqual(keys, ['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    for (const t of pod.topologySpreadConstraints) assert.deepEqual(t.labelSelector.matchLabels, dep.spec.selector.matchLabels);
    assert.equal(pod.priorityClassName, 'system-cluster-critical');
    assert.equal(c.startupProbe.httpGet.path, '/healthz');
    assert.equal(c.startupProbe.httpGet.port, 'admin');
    assert.ok(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold >= 60, 'a slow first start is not killed within a minute');
    assert.equal(c.livenessProbe.initialDelaySeconds, undefined, 'the startup probe holds the liveness probe back');
    // bench/kubernetes-scale.ts at 10,000 Services × 10 endpoints: RSS after sync 240 MB.
    const mib = (q: string) => Number(/^(\d+)Mi$/.exec(q)?.[1] ?? NaN);
    assert.ok(mib(c.resources.requests.memory) * 1.048_576 >= 240, `request ${c.resources.requests.memory} fits 240 MB`);
    assert.ok(mib(c.resources.limits.memory) >= 2 * mib(c.resources.requests.memory), 'the limit leaves room for a relist');
    assert.equal(c.image, 'svcdns:0.1.0', 'images: in the kustomization sets name and tag');
  });

  it('the PodDisruptionBudget selects the pods and lets one go at a time', () => {
    const pdb = one('PodDisruptionBudget');
    const dep = one('Deployment');
    assert.deepEqual(pdb.spec.selector.matchLabels, dep.spec.selector.matchLabels);
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.ok(dep.spec.replicas > pdb.spec.maxUnavailable);
  });

  it('the NetworkPolicy admits DNS from every namespace and the admin port only from the monitoring namespace', () => {
    const cfg = config();
    const np = one('NetworkPolicy');
    assert.deepEqual(np.spec.podSelector.matchLabels, one('Deployment').spec.selector.matchLabels);
    assert.deepEqual(np.spec.policyTypes, ['Ingress']);
    const rulesFor = (port: number, protocol: string) => np.spec.ingress.filter((r: Doc) => r.ports.some((p: Doc) => p.port === port && p.protocol === protocol));
    for (const proto of ['UDP', 'TCP']) {
      const dns = rulesFor(cfg.listen[0]!.port, proto);
      assert.equal(dns.length, 1, `one rule for DNS/${proto}`);
      assert.deepEqual(dns[0].from, [{ namespaceSelector: {} }], 'DNS from any pod of the cluster');
    }
    const admin = rulesFor(cfg.admin.listen.port, 'TCP');
    assert.equal(admin.length, 1, 'one rule admits the admin port');
    assert.deepEqual(admin[0].from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    assert.ok(!admin[0].ports.some((p: Doc) => p.port === cfg.listen[0]!.port), 'the admin rule does not also open DNS');
  });

  it('overlays: the HPA scales the Deployment from 2; the ServiceMonitor scrapes the admin port; the PrometheusRule is deploy/prometheus/svcdns-rules.yaml', () => {
    const hpa = one('HorizontalPodAutoscaler', overlay('autoscaling'));
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: one('Deployment').metadata.name });
    assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas);

    const po = overlay('prometheus-operator');
    const sm = one('ServiceMonitor', po);
    const metricsSvc = po.find((d) => d.kind === 'Service' && Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => d.metadata.labels?.[k] === v));
    assert.ok(metricsSvc, 'the ServiceMonitor selects a Service');
    const port = metricsSvc.spec.ports.find((p: Doc) => p.name === sm.spec.endpoints[0].port);
    assert.equal(port.port, config().admin.listen.port);
    assert.equal(sm.spec.endpoints[0].path, '/metrics');
    assert.deepEqual(sm.spec.namespaceSelector.matchNames, [NAMESPACE]);
    const rules = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/svcdns-rules.yaml'), 'utf8'));
    assert.deepEqual(one('PrometheusRule', po).spec.groups, rules.groups);
  });

  it('§5.4 shutdown fits the pod: lameduck 5 s in the ConfigMap, and the grace period covers preStop + lameduck + drain + the forced exit', () => {
    const cfg = config();
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
    // After the Node flags every launcher passes (SERVER_NODE_FLAGS, checked in test/e2e/launchers.test.ts).
    assert.match(df, /^ENTRYPOINT \["node", ("--[^"]+", )*"dist\/cli\.js"\]$/m);
    assert.match(df, /^CMD \["--config", "\/etc\/svcdns\/svcdns\.yaml"\]$/m);
    const dep = one('Deployment').spec.template.spec.containers[0];
    assert.deepEqual(dep.args, ['--config', '/etc/svcdns/svcdns.yaml']);
    const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8'));
    assert.equal(build.compilerOptions.outDir, 'dist', 'dist/cli.js is what `npm run build` emits');
  });
});

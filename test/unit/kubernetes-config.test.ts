// Unit tests for the kubernetes backend's config schema, credential source choice, ownsScope and error mapping.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { BackendError } from '../../src/backends/backend.ts';
import { configSchema, create } from '../../src/backends/kubernetes/index.ts';
import { toBackendError } from '../../src/backends/kubernetes/errors.ts';
import { chooseSource, loadKubeConfig } from '../../src/backends/kubernetes/kubeconfig.ts';
import { ENDPOINTS, ENDPOINT_SLICES } from '../../src/backends/kubernetes/rbac.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const logger = pino({ level: 'silent' });

describe('kubernetes config schema', () => {
  it('defaults: endpointslices, all namespaces, no default scope, no resync', () => {
    const c = configSchema.parse({ type: 'kubernetes' });
    assert.equal(c.api, 'endpointslices');
    assert.deepEqual(c.namespaces, []);
    assert.equal(c.defaultScope, undefined);
    assert.equal(c.resyncMs, 0);
  });

  it('rejects unknown keys, a bad api, a defaultScope outside namespaces, a tiny resync, repeated namespaces', () => {
    for (const bad of [
      { type: 'kubernetes', namespace: 'x' },
      { type: 'kubernetes', api: 'pods' },
      { type: 'kubernetes', namespaces: ['a'], defaultScope: 'b' },
      { type: 'kubernetes', resyncMs: 50 },
      { type: 'kubernetes', namespaces: ['a', 'A'] },
      { type: 'kubernetes', namespaces: ['not a label'] },
    ]) {
      assert.equal(configSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
    assert.equal(configSchema.parse({ type: 'kubernetes', namespaces: ['Prod'], defaultScope: 'prod' }).namespaces[0], 'prod');
  });
});

describe('kubernetes ownsScope (§5.4)', () => {
  const ctx = { logger, configDir: '/', env: { KUBECONFIG: '/nonexistent' } };
  it('unscoped names only with defaultScope; namespaces: listed ones, or all when empty', () => {
    const all = create(configSchema.parse({ type: 'kubernetes' }), ctx);
    assert.equal(all.ownsScope(null), false);
    assert.equal(all.ownsScope('anything'), true);
    const some = create(configSchema.parse({ type: 'kubernetes', namespaces: ['prod', 'staging'], defaultScope: 'prod' }), ctx);
    assert.equal(some.ownsScope(null), true);
    assert.equal(some.ownsScope('prod'), true);
    assert.equal(some.ownsScope('dev'), false);
  });
});

describe('kubernetes credential source', () => {
  it('kubeconfig key (relative to the config dir) > $KUBECONFIG > in-cluster env', () => {
    assert.deepEqual(chooseSource({ kubeconfig: 'kc.yaml' }, '/etc/svcdns', { KUBECONFIG: '/x' }), { kind: 'file', path: '/etc/svcdns/kc.yaml', from: 'config' });
    assert.deepEqual(chooseSource({}, '/etc', { KUBECONFIG: '/a/kc:/b/kc', KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }), { kind: 'file', path: '/a/kc', from: 'KUBECONFIG' });
    const ic = chooseSource({}, '/etc', { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' });
    assert.equal(ic.kind, 'in-cluster');
  });

  it('nothing configured: create() throws SVCDNS_BACKEND_CONFIG', () => {
    assert.throws(
      () => create(configSchema.parse({ type: 'kubernetes' }), { logger, configDir: '/', env: {} }),
      (e: unknown) => e instanceof BackendError && e.code === 'SVCDNS_BACKEND_CONFIG',
    );
  });

  it('in-cluster: https://host:port (IPv6 bracketed), token file required', () => {
    assert.throws(
      () => loadKubeConfig({ kind: 'in-cluster', host: 'fd00::1', port: '443', saDir: '/nonexistent' }, undefined),
      (e: unknown) => e instanceof BackendError && e.code === 'SVCDNS_BACKEND_CONFIG' && /token/.test(e.message),
    );
    const dir = tempDir('svcdns-sa-');
    writeFileSync(join(dir, 'token'), 'tok');
    const kc = loadKubeConfig({ kind: 'in-cluster', host: 'fd00::1', port: '443', saDir: dir }, undefined);
    assert.equal(kc.getCurrentCluster()?.server, 'https://[fd00::1]:443');
    assert.equal(kc.getCurrentCluster()?.caFile, `${dir}/ca.crt`);
  });

  it('kubeconfig file: unreadable file and unknown context are SVCDNS_BACKEND_CONFIG; context switches cluster', () => {
    const isConfig = (e: unknown) => e instanceof BackendError && e.code === 'SVCDNS_BACKEND_CONFIG';
    assert.throws(() => loadKubeConfig({ kind: 'file', path: '/nonexistent/kc', from: 'config' }, undefined), isConfig);
    const dir = tempDir('svcdns-kc-');
    const path = join(dir, 'kc');
    writeFileSync(path, [
      'apiVersion: v1', 'kind: Config', 'current-context: a',
      'clusters: [{name: ca, cluster: {server: "https://a.example:6443"}}, {name: cb, cluster: {server: "https://b.example:6443"}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: a, context: {cluster: ca, user: u}}, {name: b, context: {cluster: cb, user: u}}]',
    ].join('\n'));
    assert.equal(loadKubeConfig({ kind: 'file', path, from: 'config' }, undefined).getCurrentCluster()?.server, 'https://a.example:6443');
    assert.equal(loadKubeConfig({ kind: 'file', path, from: 'config' }, 'b').getCurrentCluster()?.server, 'https://b.example:6443');
    assert.throws(() => loadKubeConfig({ kind: 'file', path, from: 'config' }, 'nope'), isConfig);
  });
});

describe('kubernetes error mapping', () => {
  it('403 names the verb, resource, group and scope and the grant to add', () => {
    const e = toBackendError(Object.assign(new Error('Forbidden'), { statusCode: 403 }), 'watch', ENDPOINT_SLICES, null);
    assert.equal(e.code, 'SVCDNS_BACKEND_FORBIDDEN');
    assert.equal(
      e.message,
      'forbidden: cannot watch resource "endpointslices" in API group "discovery.k8s.io" at the cluster scope — grant list,watch on discovery.k8s.io/endpointslices',
    );
    const core = toBackendError({ code: 403, body: '{"message":"endpoints is forbidden"}' }, 'list', ENDPOINTS, 'prod');
    assert.match(core.message, /cannot list resource "endpoints" in API group "" in the namespace "prod" — grant list,watch on core\/endpoints/);
    assert.equal(core.details.server, 'endpoints is forbidden');
  });

  it('401 → FORBIDDEN, other statuses → HTTP, connection errors → UNREACHABLE, timeouts → TIMEOUT', () => {
    assert.equal(toBackendError({ code: 401 }, 'list', ENDPOINT_SLICES, null).code, 'SVCDNS_BACKEND_FORBIDDEN');
    assert.equal(toBackendError({ code: 500 }, 'list', ENDPOINT_SLICES, null).code, 'SVCDNS_BACKEND_HTTP');
    const refused = Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) });
    assert.equal(toBackendError(refused, 'list', ENDPOINT_SLICES, null).code, 'SVCDNS_BACKEND_UNREACHABLE');
    assert.equal(toBackendError(new DOMException('t', 'TimeoutError'), 'watch', ENDPOINT_SLICES, null).code, 'SVCDNS_BACKEND_TIMEOUT');
  });
});

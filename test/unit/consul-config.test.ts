// test/unit/consul-config: the consul backend's strict schema and how address / token / TLS are resolved
// from config, Consul's CONSUL_HTTP_* environment and files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, parseAddress, resolveAccess } from '../../src/backends/consul/config.ts';
import { BackendError } from '../../src/backends/backend.ts';

test('defaults: stale, 60 s wait, 128 connections, datacenters []', () => {
  const c = configSchema.parse({ type: 'consul' });
  assert.equal(c.consistency, 'stale');
  assert.equal(c.waitSeconds, 60);
  assert.equal(c.maxConnections, 128);
  assert.deepEqual(c.datacenters, []);
  assert.equal(c.onlyPassing, false);
});

test('strict: unknown keys, bad consistency, wait above Consul\'s 600 s cap, cert without key', () => {
  for (const bad of [
    { type: 'consul', adress: 'x' },
    { type: 'consul', consistency: 'eventual' },
    { type: 'consul', waitSeconds: 601 },
    { type: 'consul', tls: { certFile: 'c.pem' } },
    { type: 'consul', datacenters: ['not a label'] },
    { type: 'consul', maxConnections: 10, fetchConcurrency: 9 },
  ]) {
    assert.equal(configSchema.safeParse(bad).success, false, JSON.stringify(bad));
  }
  assert.deepEqual(configSchema.parse({ type: 'consul', datacenters: ['DC2'] }).datacenters, ['dc2']);
});

test('parseAddress: host:port, URL, CONSUL_HTTP_SSL, IPv6', () => {
  assert.deepEqual(parseAddress('10.0.0.1:8500', false), { protocol: 'http:', host: '10.0.0.1', port: 8500 });
  assert.deepEqual(parseAddress('consul.local:8501', true), { protocol: 'https:', host: 'consul.local', port: 8501 });
  assert.deepEqual(parseAddress('https://consul.local', false), { protocol: 'https:', host: 'consul.local', port: 8501 });
  assert.deepEqual(parseAddress('[::1]:8500', false), { protocol: 'http:', host: '::1', port: 8500 });
  assert.throws(() => parseAddress('ftp://x', false), (e: unknown) => e instanceof BackendError && e.code === 'SVCDNS_BACKEND_CONFIG');
});

test('token precedence: config > tokenFile > CONSUL_HTTP_TOKEN > CONSUL_HTTP_TOKEN_FILE; sources reported', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'svcdns-consul-'));
  try {
    await writeFile(join(dir, 'tok'), 'from-file\n');
    const base = configSchema.parse({ type: 'consul' });
    const env = { CONSUL_HTTP_TOKEN: 'from-env', CONSUL_HTTP_TOKEN_FILE: 'tok', CONSUL_HTTP_ADDR: '10.1.1.1:8500' };
    let a = await resolveAccess({ ...base, token: 'cfg' }, env, dir);
    assert.deepEqual([a.token, a.tokenSource], ['cfg', 'config']);
    a = await resolveAccess({ ...base, tokenFile: 'tok' }, env, dir);
    assert.deepEqual([a.token, a.tokenSource], ['from-file', 'config-file']);
    a = await resolveAccess(base, env, dir);
    assert.deepEqual([a.token, a.tokenSource, a.endpoint.host], ['from-env', 'env', '10.1.1.1']);
    a = await resolveAccess(base, { CONSUL_HTTP_TOKEN_FILE: 'tok' }, dir);
    assert.deepEqual([a.token, a.tokenSource], ['from-file', 'env-file']);
    a = await resolveAccess(base, {}, dir);
    assert.deepEqual([a.token, a.tokenSource, a.endpoint.port], [null, 'none', 8500]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('TLS: files read for https; a missing CA file is a CONFIG error; tls on http is rejected', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'svcdns-consul-'));
  try {
    await writeFile(join(dir, 'ca.pem'), 'CA');
    const c = configSchema.parse({ type: 'consul', address: 'https://c:8501', tls: { caFile: 'ca.pem', serverName: 'server.dc1.consul' } });
    const a = await resolveAccess(c, {}, dir);
    assert.equal(a.tls?.ca?.toString(), 'CA');
    assert.equal(a.tls?.servername, 'server.dc1.consul');
    const missing = configSchema.parse({ type: 'consul', address: 'https://c:8501', tls: { caFile: 'nope.pem' } });
    await assert.rejects(resolveAccess(missing, {}, dir), (e: unknown) => e instanceof BackendError && e.code === 'SVCDNS_BACKEND_CONFIG');
    const onHttp = configSchema.parse({ type: 'consul', address: 'c:8500', tls: { caFile: 'ca.pem' } });
    await assert.rejects(resolveAccess(onHttp, {}, dir), (e: unknown) => e instanceof BackendError && e.code === 'SVCDNS_BACKEND_CONFIG');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// Unit (real HTTP on 127.0.0.1): ConsulHttp, the Consul backend's HTTP client. A blocking query that comes back
// with the index it was sent changed nothing (Consul's wait expired): its body is discarded unread, because at
// 10k services the watches cycle through their blocking slots ~100 times a second (issue 11: idle CPU). Any other
// reply is read and parsed as before.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { ConsulHttp, queryString } from '../../src/backends/consul/http.ts';
import { BackendError } from '../../src/backends/backend.ts';

/** A stand-in agent whose every reply carries X-Consul-Index 42 and a body that is not JSON. */
async function agent(): Promise<{ port: number; close: () => Promise<void>; paths: string[] }> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '42' });
    res.end('not json: a body that would fail JSON.parse');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, paths, close: () => new Promise((r) => server.close(() => r())) };
}

test('ConsulHttp: a blocking query answered with the index it sent is "unchanged" and its body is not parsed', async () => {
  const a = await agent();
  const c = new ConsulHttp({ endpoint: { protocol: 'http:', host: '127.0.0.1', port: a.port }, token: null, tokenSource: 'none', tls: null }, { maxConnections: 2, consistency: 'default' });
  try {
    const same = await c.get('/v1/health/service/web', { query: { index: '42', wait: '1s' }, timeoutMs: 20_000 });
    assert.equal(same.unchanged, true);
    assert.equal(same.index, 42);
    assert.equal(same.body, null);
    assert.match(a.paths[0]!, /index=42/);
    // Another index back (a change), or no index sent (a fresh read): read and parsed, so the bad body fails.
    await assert.rejects(c.get('/v1/health/service/web', { query: { index: '41', wait: '1s' }, timeoutMs: 20_000 }),
      (e: unknown) => e instanceof BackendError && e.code === 'SVCDNS_BACKEND_BAD_DATA');
    await assert.rejects(c.get('/v1/health/service/web', { timeoutMs: 20_000 }),
      (e: unknown) => e instanceof BackendError && e.code === 'SVCDNS_BACKEND_BAD_DATA');
  } finally {
    c.destroy();
    await a.close();
  }
});

test('ConsulHttp: an unchanged blocking reply whose connection drops mid-body fails as unreachable (not a wait for the timeout)', async () => {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '42', 'content-length': '1000' });
    res.write('[{"half": ');
    setImmediate(() => res.socket?.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const c = new ConsulHttp({ endpoint: { protocol: 'http:', host: '127.0.0.1', port }, token: null, tokenSource: 'none', tls: null }, { maxConnections: 2, consistency: 'default' });
  try {
    await assert.rejects(c.get('/v1/health/service/web', { query: { index: '42', wait: '1s' }, timeoutMs: 60_000 }),
      (e: unknown) => e instanceof BackendError && e.code === 'SVCDNS_BACKEND_UNREACHABLE');
  } finally {
    c.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('queryString: what URLSearchParams wrote, with bare flags, for any keys and values (the filter expressions among them)', () => {
  // The implementation this replaced, kept here as the reference.
  const reference = (flag: string | undefined, query: Record<string, string | undefined>): string => {
    const params = new URLSearchParams();
    if (flag !== undefined) params.set(flag, '');
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
    return params.toString().replace(/=(&|$)/g, '$1');
  };
  const text = fc.string({ unit: fc.oneof(fc.constantFrom(' ', '!', '"', '=', '&', '+', '%', '~', "'", '(', ')', '*', '-', '.', '_', '/', '?', '#', 'é', '😀', '\ud800'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })) });
  fc.assert(
    fc.property(
      fc.constantFrom(undefined, 'stale', 'consistent'),
      fc.dictionary(fc.oneof(text, fc.constantFrom('stale', 'index', 'wait', 'dc', 'filter', 'passing')), fc.option(text, { nil: undefined }), { maxKeys: 6 }),
      (flag, query) => assert.equal(queryString(flag, query), reference(flag, query)),
    ),
    { numRuns: 1000 },
  );
  assert.equal(queryString('stale', { dc: 'dc2', filter: 'Status != "passing"', index: '42', wait: '60s', passing: '' }), 'stale&dc=dc2&filter=Status+%21%3D+%22passing%22&index=42&wait=60s&passing');
  assert.equal(queryString(undefined, {}), '');
});

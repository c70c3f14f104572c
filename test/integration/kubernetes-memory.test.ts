// The kubernetes backend keeps only the API object fields it uses (issue 11 item 4): after a sync, the main
// thread's heap (a V8 heap snapshot, which collects garbage first) holds the served addresses but none of the
// fields the backend drops — annotations, node names, zones, managedFields. (A targetRef's Pod name is kept: it
// is the instance name, dns-behaviour.md §2.6, and the test checks that it is.) The API server fake runs
// in a worker thread, whose heap is not in the snapshot, so what is found belongs to the backend.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { getHeapSnapshot } from 'node:v8';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { Backoff } from '../../src/backends/backoff.ts';
import { configSchema, create } from '../../src/backends/kubernetes/index.ts';
import { HANG_DEADLINE_MS } from '../helpers/deadline.ts';
import { RecordingSink } from '../fakes/kube-apiserver-fake.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const FAKE = new URL('../fakes/kube-apiserver-fake.ts', import.meta.url).href;
/** The Pod name of each endpoint's targetRef: kept, as the instance name (§2.6). */
const POD_NAME = 'sentinel-target-pod-name-9c8b7a6d5e4f';
const DROPPED = {
  annotation: 'sentinel-annotation-value-4f1d2c9a8b7e',
  nodeName: 'sentinel-node-name-1a2b3c4d5e6f7a8b',
  zone: 'sentinel-zone-name-8f7e6d5c4b3a2918',
  managedField: 'sentinel-managed-field-manager-77aa',
};
/** The worker builds the served address 10.123.45.(60 + k) for slice k = 7. */
const KEPT_PREFIX = '10.123.45.';

/** Worker: the fake with 50 slices carrying every sentinel; posts its kubeconfig, stops on any message. */
const WORKER = `
  const { parentPort, workerData } = require('node:worker_threads');
  (async () => {
    const { KubeApiServerFake, endpointSlice } = await import(workerData.fake);
    const d = workerData.dropped;
    const fake = await KubeApiServerFake.start();
    for (let k = 0; k < 50; k++) {
      const s = endpointSlice({ namespace: 'default', name: 'svc-' + k + '-x', service: 'svc-' + k, ports: [{ name: 'http', port: 80 }],
        endpoints: [{ addresses: [k === 7 ? workerData.kept + (60 + k) : '10.9.0.' + (k + 1)], ready: true, pod: workerData.pod + '-' + k }] });
      s.metadata.annotations = { 'example.com/note': d.annotation + '-' + k };
      s.metadata.managedFields = [{ manager: d.managedField + '-' + k, operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: {} }];
      for (const e of s.endpoints) { e.nodeName = d.nodeName + '-' + k; e.zone = d.zone + '-' + k; }
      fake.apply(s);
    }
    parentPort.once('message', () => { fake.stop().then(() => parentPort.close()); });
    parentPort.postMessage(fake.kubeconfig());
  })();
`;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function heapText(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of getHeapSnapshot()) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('kubernetes backend memory (issue 11 item 4)', () => {
  it('after the sync, no dropped API field survives in the backend; the served addresses do', async () => {
    const worker = new Worker(WORKER, { eval: true, workerData: { fake: FAKE, dropped: DROPPED, kept: KEPT_PREFIX, pod: POD_NAME } });
    cleanups.push(async () => { worker.postMessage('stop'); await worker.terminate(); });
    const kubeconfig = await new Promise<string>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
    const dir = tempDir('svcdns-k8s-mem-');
    writeFileSync(join(dir, 'kubeconfig'), kubeconfig);
    const backend = create(configSchema.parse({ type: 'kubernetes', kubeconfig: 'kubeconfig' }),
      { logger: pino({ level: 'silent' }), configDir: dir, env: {} }, { backoff: () => new Backoff({ initialMs: 20, maxMs: 200 }) });
    cleanups.push(() => backend.stop());
    const sink = new RecordingSink();
    backend.start(sink);
    const deadline = Date.now() + HANG_DEADLINE_MS;
    while (sink.snapshots.length === 0) {
      if (Date.now() > deadline) throw new Error('no snapshot');
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(sink.last!.services.size, 50);
    const heap = await heapText();
    // Needles are built only now: the worker's values ("<base>-<k>") exist in this heap only if the backend kept them.
    assert.ok(heap.includes(`"${KEPT_PREFIX}${60 + 7}"`), 'the heap snapshot shows a served address (the search works)');
    const found = Object.entries(DROPPED).filter(([, v]) => heap.includes(`"${v}-7"`)).map(([k]) => k);
    assert.deepEqual(found, [], 'fields the backend does not use are not kept');
    assert.ok(heap.includes(`"${POD_NAME}-7"`), 'the Pod name is kept as the instance name (§2.6)');
  });
});

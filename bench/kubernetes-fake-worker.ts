// bench/kubernetes-fake-worker: the Kubernetes API fake in a worker thread, so the bench's own event loop (its
// DNS client, its latency clock) never waits behind the fake's JSON.stringify of a 10k-slice LIST.
// workerData: { services, perService }. Posts { kubeconfig } when serving; accepts { flip: [k, j, ready] }.

import { parentPort, workerData } from 'node:worker_threads';
import { KubeApiServerFake, endpointSlice, type KubeObject } from '../test/fakes/kube-apiserver-fake.ts';

const { services, perService } = workerData as { services: number; perService: number };
const ready: boolean[][] = Array.from({ length: services }, () => Array.from({ length: perService }, () => true));

/** Address of endpoint j of service k (the same scheme as bench/realistic.ts). */
const addr = (k: number, j: number) => `10.${(k >> 8) & 255}.${k & 255}.${j + 1}`;
const slice = (k: number): KubeObject =>
  endpointSlice({
    namespace: 'default',
    name: `svc-${k}-b7x2q`,
    service: `svc-${k}`,
    ports: [{ name: 'http', port: 8080 }],
    endpoints: Array.from({ length: perService }, (_, j) => ({ addresses: [addr(k, j)], ready: ready[k]![j]!, pod: `svc-${k}-${j}` })),
  });

const fake = await KubeApiServerFake.start();
for (let k = 0; k < services; k++) fake.apply(slice(k));
parentPort!.on('message', (m: { flip?: [number, number, boolean]; stop?: true }) => {
  if (m.flip) {
    const [k, j, r] = m.flip;
    ready[k]![j] = r;
    fake.apply(slice(k));
  }
  if (m.stop) void fake.stop().then(() => parentPort!.close());
});
parentPort!.postMessage({ kubeconfig: fake.kubeconfig() });

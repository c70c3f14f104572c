// bench/kubernetes-scale: the Kubernetes backend alone at scale (issue 11 items 4, 8, 9), reported, never asserted.
// Starts the API fake (in a worker thread) with K_SERVICES services × K_PER endpoints (default 10,000 × 10),
// then svcdns from src/ with one `type: kubernetes` backend, and queries it every 2 ms from the first moment:
// - start → first NOERROR answer for svc-0 (item 9: within 1 s at small sizes on an idle machine);
// - the longest DNS reply latency and the queries lost (no reply in 2 s) before and after the first answer
//   (item 8: a blocked event loop shows up as one long latency and lost queries);
// - RSS of the svcdns process after sync, settled (item 4).
// Usage: npx node --disable-warning=ExperimentalWarning bench/kubernetes-scale.ts
//   K_SERVICES, K_PER: the size; K_SETTLE_MS: how long to keep querying after the first answer (default 5000);
//   K_NODE_ARGS: extra node flags for svcdns (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"); K_HEAPSNAPSHOT_DIR: see below.

import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DnsClient, cleanupAll, cleanupDir, f, freePort, installCleanupHandlers, metric, rssMb, scrape, sleep, start, stopChild } from './lib.ts';
// The Node flags every shipped launcher passes (package.json start, bin shebang, Dockerfile, systemd unit).
import { SERVER_ENV, SERVER_NODE_FLAGS } from '../src/require-node.ts';

const services = Number(process.env.K_SERVICES ?? 10_000);
const per = Number(process.env.K_PER ?? 10);
const settleMs = Number(process.env.K_SETTLE_MS ?? 5000);
const nodeArgs = (process.env.K_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');

installCleanupHandlers();
const worker = new Worker(new URL('./kubernetes-fake-worker.ts', import.meta.url), { workerData: { services, perService: per } });
const { kubeconfig } = await new Promise<{ kubeconfig: string }>((resolve, reject) => {
  worker.once('message', resolve);
  worker.once('error', reject);
});
const dir = mkdtempSync(join(tmpdir(), 'svcdns-kscale-'));
cleanupDir(dir);
writeFileSync(join(dir, 'kubeconfig'), kubeconfig);
const port = await freePort();
const adminPort = await freePort();
writeFileSync(join(dir, 'svcdns.yaml'), [
  `listen: ["127.0.0.1:${port}"]`, 'admin:', `  listen: 127.0.0.1:${adminPort}`, 'log:', '  level: info', 'backends:',
  '  - type: kubernetes', `    kubeconfig: ${JSON.stringify(join(dir, 'kubeconfig'))}`, '    defaultScope: default', '',
].join('\n'));

const client = new DnsClient();
const root = new URL('..', import.meta.url).pathname;
const t0 = performance.now();
const child = start(process.execPath, ['--disable-warning=ExperimentalWarning', ...SERVER_NODE_FLAGS, ...nodeArgs, join(root, 'src/cli.ts'), '--config', join(dir, 'svcdns.yaml')], 'svcdns', { cwd: root, env: { ...process.env, ...SERVER_ENV } });
let firstAnswerMs = NaN;
const before = { max: 0, lost: 0, n: 0 };
const after = { max: 0, lost: 0, n: 0 };
let stopAt = Infinity;
const inflight: Promise<void>[] = [];
const deadline = t0 + 120_000;
try {
  // One query every 2 ms, each on its own: a stalled server shows up as long latencies and lost queries.
  let firstReplyAt = Infinity; // queries sent before the sockets were bound get no reply: not losses
  while (performance.now() < stopAt && performance.now() < deadline) {
    const sentAt = performance.now();
    inflight.push(client.ask(port, 'svc-0.service.sd.internal', 'A', 2000).then((r) => {
      if (r === null && sentAt < firstReplyAt) return;
      if (r !== null) firstReplyAt = Math.min(firstReplyAt, sentAt);
      const phase = Number.isNaN(firstAnswerMs) || sentAt < t0 + firstAnswerMs ? before : after;
      phase.n++;
      if (r === null) { phase.lost++; return; }
      phase.max = Math.max(phase.max, r.ms);
      if (r.rcode === 'NOERROR' && r.data.length > 0 && Number.isNaN(firstAnswerMs)) {
        firstAnswerMs = performance.now() - t0;
        stopAt = performance.now() + settleMs;
      }
    }));
    if (inflight.length > 2000) await Promise.all(inflight.splice(0, 1000));
    await sleep(2);
  }
  await Promise.all(inflight);
  const rss = rssMb(child.pid);
  const m = await scrape(adminPort);
  const heap = (n: string) => f(metric(m, n) / 1048576);
  console.log(`kubernetes backend, ${services} services × ${per} endpoints`);
  console.log(`  start → first answer: ${f(firstAnswerMs)} ms`);
  console.log(`  before it: ${before.n} queries, max latency ${f(before.max, 1)} ms, lost ${before.lost}`);
  console.log(`  ${settleMs} ms after it: ${after.n} queries, max latency ${f(after.max, 1)} ms, lost ${after.lost}`);
  console.log(`  RSS after sync: ${f(rss)} MB (V8 heap used ${heap('svcdns_nodejs_heap_size_used_bytes')} of ${heap('svcdns_nodejs_heap_size_total_bytes')} MB, external ${heap('svcdns_nodejs_external_memory_bytes')} MB)`);
  if (process.env.K_HEAPSNAPSHOT_DIR) {
    // With K_NODE_ARGS="--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR": a heap snapshot (it collects garbage
    // first), then the heap in use again, i.e. the live data.
    const dirBefore = new Set(readdirSync(process.env.K_HEAPSNAPSHOT_DIR));
    child.kill('SIGUSR2');
    const end = Date.now() + 120_000;
    const done = () => readdirSync(process.env.K_HEAPSNAPSHOT_DIR!).some((n) => !dirBefore.has(n) && n.endsWith('.heapsnapshot'));
    while (!done() && Date.now() < end) await sleep(200);
    await sleep(3000); // the file appears before it is complete
    const m2 = await scrape(adminPort);
    console.log(`  after a full GC: RSS ${f(rssMb(child.pid))} MB, V8 heap used ${f(metric(m2, 'svcdns_nodejs_heap_size_used_bytes') / 1048576)} MB`);
  }
} finally {
  client.close();
  await stopChild(child);
  worker.postMessage({ stop: true });
  await worker.terminate();
  await cleanupAll();
}

// bench/file-scale: the file backend alone at scale (issue 11 items 4 and 7), reported, never asserted.
// For each format (YAML, JSON): writes a services file of F_SERVICES services × F_PER instances (default
// 10,000 × 10), starts svcdns from src/ with one `type: file` backend (one DNS thread), waits for the first
// answer, reads RSS after sync; then replaces the file by rename with one address changed and queries every 2 ms
// until the new address is answered:
// - the longest DNS reply latency and the queries lost (no reply in 2 s) during that reload, and svcdns's own
//   event-loop lag max over it (item 7: a parse on the DNS thread shows up as one long latency and lost queries;
//   on a busy machine the reply latency also counts the scheduler, the lag only svcdns's own thread);
// - RSS of the svcdns process after sync and after the reload, settled (item 4).
// Usage: npx node --disable-warning=ExperimentalWarning bench/file-scale.ts
//   F_SERVICES, F_PER: the size; F_FORMATS: "yaml,json" (default both); F_RELOADS: reloads per format (default 3);
//   F_NODE_ARGS: extra node flags for svcdns (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").

import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsClient, cleanupAll, cleanupDir, f, freePort, installCleanupHandlers, metric, rssMb, scrape, sleep, start, stopChild, waitReply } from './lib.ts';
// The Node flags every shipped launcher passes (package.json start, bin shebang, Dockerfile, systemd unit).
import { SERVER_ENV, SERVER_NODE_FLAGS } from '../src/require-node.ts';

const services = Number(process.env.F_SERVICES ?? 10_000);
const per = Number(process.env.F_PER ?? 10);
const formats = (process.env.F_FORMATS ?? 'yaml,json').split(',').filter((x) => x === 'yaml' || x === 'json');
const reloads = Number(process.env.F_RELOADS ?? 3);
const nodeArgs = (process.env.F_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');

const addr = (k: number, j: number, gen: number) => `10.${(k >> 8) & 0xff}.${k & 0xff}.${(j + gen * per) % 250 + 1}`;

/** The services file text; `gen` moves svc-0's first address (the change a reload must show). */
function fileText(format: 'yaml' | 'json', gen: number): string {
  if (format === 'json') {
    const list = [];
    for (let k = 0; k < services; k++) {
      const instances = [];
      for (let j = 0; j < per; j++) instances.push({ address: addr(k, j, k === 0 && j === 0 ? gen : 0), ports: { http: 8080 }, tags: ['v1'] });
      list.push({ name: `svc-${k}`, instances });
    }
    return JSON.stringify({ services: list }, null, 1);
  }
  const out = ['services:'];
  for (let k = 0; k < services; k++) {
    out.push(`  - name: svc-${k}`, '    tags: [prod]', '    instances:');
    for (let j = 0; j < per; j++) {
      out.push(`      - address: ${addr(k, j, k === 0 && j === 0 ? gen : 0)}`, '        ports: { http: 8080 }', '        tags: [v1]');
    }
  }
  return out.join('\n') + '\n';
}

installCleanupHandlers();
const root = new URL('..', import.meta.url).pathname;
const client = new DnsClient();
try {
  for (const format of formats) {
    const dir = mkdtempSync(join(tmpdir(), 'svcdns-fscale-'));
    cleanupDir(dir);
    const file = join(dir, `services.${format}`);
    const text0 = fileText(format, 0);
    writeFileSync(file, text0);
    const port = await freePort();
    const admin = await freePort();
    writeFileSync(join(dir, 'svcdns.yaml'), [
      `listen: ["127.0.0.1:${port}"]`, 'admin:', `  listen: "127.0.0.1:${admin}"`, 'log:', '  level: info', 'backends:',
      '  - type: file', `    path: ${JSON.stringify(file)}`, '',
    ].join('\n'));
    const t0 = performance.now();
    const child = start(process.execPath, ['--disable-warning=ExperimentalWarning', ...SERVER_NODE_FLAGS, ...nodeArgs, join(root, 'src/cli.ts'), '--config', join(dir, 'svcdns.yaml')], 'svcdns', { cwd: root, env: { ...process.env, ...SERVER_ENV } });
    try {
      const first = addr(0, 0, 0);
      await waitReply(client, port, 'svc-0.service.sd.internal', 'A', (r) => r.data.includes(first), 300_000);
      const startMs = performance.now() - t0;
      await sleep(2000);
      const rssSync = rssMb(child.pid);
      const heap = async () => {
        const m = await scrape(admin);
        return `heap used ${f(metric(m, 'svcdns_nodejs_heap_size_used_bytes') / 1e6)} MB of ${f(metric(m, 'svcdns_nodejs_heap_size_total_bytes') / 1e6)} MB`;
      };
      console.log(`file backend (${format}, ${(text0.length / 1e6).toFixed(1)} MB), ${services} services × ${per} instances`);
      console.log(`  start → first answer: ${f(startMs)} ms; RSS after sync: ${f(rssSync)} MB (${await heap()})`);
      for (let gen = 1; gen <= reloads; gen++) {
        const want = addr(0, 0, gen);
        writeFileSync(`${file}.tmp`, fileText(format, gen));
        const stat = { n: 0, lost: 0, max: 0 };
        let seen = false;
        const inflight: Promise<void>[] = [];
        await scrape(admin); // resets the event-loop lag histogram: the next scrape covers this reload only
        const r0 = performance.now();
        renameSync(`${file}.tmp`, file);
        let seenAt = NaN;
        while (!seen && performance.now() < r0 + 300_000) {
          inflight.push(client.ask(port, 'svc-0.service.sd.internal', 'A', 2000).then((r) => {
            stat.n++;
            if (r === null) { stat.lost++; return; }
            stat.max = Math.max(stat.max, r.ms);
            if (!seen && r.data.includes(want)) { seen = true; seenAt = performance.now() - r0; }
          }));
          if (inflight.length > 2000) await Promise.all(inflight.splice(0, 1000));
          await sleep(2);
        }
        await Promise.all(inflight);
        const lagMax = metric(await scrape(admin), 'svcdns_nodejs_eventloop_lag_max_seconds') * 1000;
        await sleep(2000);
        console.log(`  reload ${gen}: applied after ${f(seenAt)} ms; ${stat.n} queries during it, max latency ${f(stat.max, 1)} ms, lost ${stat.lost}, svcdns event-loop lag max ${f(lagMax, 1)} ms; RSS after: ${f(rssMb(child.pid))} MB (${await heap()})`);
      }
    } finally {
      await stopChild(child);
    }
  }
} finally {
  client.close();
  await cleanupAll();
}

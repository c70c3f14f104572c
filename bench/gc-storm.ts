// bench/gc-storm: how often a fresh svcdns process lands in a full-GC storm, reported, never asserted.
// Starts G_TRIES (default 12) servers one after another, each with the file backend at 10,000 services × 10 and
// `--trace-gc`, warms its cache with one pass over the realistic query file, then runs dnsperf for 8 s and counts
// the full collections (Mark-Compact) in that window. A healthy process runs ~1; a process in the storm the
// launchers' `--no-allocation-site-pretenuring` is there for (see src/require-node.ts) runs one every ~230 ms
// (30+) and answers 20–25 % fewer queries. The storm is rare (seen in 3 of ~24 bench processes before the flag),
// so compare flag sets over many tries, interleaved if the host drifts.
// Usage: npx node --disable-warning=ExperimentalWarning bench/gc-storm.ts
//   G_TRIES: servers to start; G_FLAGS: the Node flags instead of the launchers' (e.g. "--max-semi-space-size=2
//   --optimize-for-size" for the flags before the fix; add --trace-pretenuring to see V8's decisions in the logs).

import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsClient, cleanupAll, cleanupDir, dnsperf, freePort, installCleanupHandlers, sleep, start, stopChild } from './lib.ts';
import { writeQueryFile, writeServicesJson } from './realistic.ts';
import { SERVER_ENV, SERVER_NODE_FLAGS } from '../src/require-node.ts';

installCleanupHandlers();
const tries = Number(process.env.G_TRIES ?? 12);
const flags = (process.env.G_FLAGS ?? SERVER_NODE_FLAGS.join(' ')).split(' ').filter((a) => a !== '');
const dir = mkdtempSync(join(tmpdir(), 'svcdns-gcstorm-'));
cleanupDir(dir);
const svc = join(dir, 'services.json');
writeServicesJson(svc, 10_000, 10);
const qfile = join(dir, 'queries.txt');
writeQueryFile(qfile, 10_000);
const root = new URL('..', import.meta.url).pathname;
const client = new DnsClient();
console.log(`gc-storm: ${tries} fresh servers, node flags: ${flags.join(' ')}`);
let storms = 0;
const qps: number[] = [];
try {
  for (let i = 1; i <= tries; i++) {
    const port = await freePort();
    const admin = await freePort();
    writeFileSync(join(dir, 'svcdns.yaml'), `listen: "127.0.0.1:${port}"\nadmin: { listen: "127.0.0.1:${admin}" }\nlog: { level: warn }\nbackends:\n  - type: file\n    path: ${JSON.stringify(svc)}\n`);
    const log = join(dir, `gc-${i}.log`);
    writeFileSync(log, '');
    const child = start(process.execPath, ['--disable-warning=ExperimentalWarning', ...flags, '--trace-gc', join(root, 'src/cli.ts'), '--config', join(dir, 'svcdns.yaml')], 'svcdns', {
      cwd: root, env: { ...process.env, ...SERVER_ENV },
    });
    child.stdout!.on('data', (d: Buffer) => appendFileSync(log, d));
    try {
      let up = false;
      for (let t = 0; t < 600 && !up; t++) {
        const r = await client.ask(port, 'svc-9999.service.sd.internal', 'A', 500);
        up = r?.rcode === 'NOERROR' && r.data.length === 10;
        if (!up) await sleep(100);
      }
      if (!up) throw new Error(`server ${i} never answered svc-9999 (log: ${log})`);
      await dnsperf(port, qfile, join(dir, 'warm.out'), ['-c', '1', '-e', '-q', '20', '-n', '1'], false);
      const from = readFileSync(log, 'utf8').split('\n').length;
      const p = await dnsperf(port, qfile, join(dir, 'run.out'), ['-c', '1', '-e', '-q', '20', '-l', '8'], false);
      const lines = readFileSync(log, 'utf8').split('\n').slice(from);
      const full = lines.filter((l) => l.includes('Mark-Compact')).length;
      const storm = full > 8;
      if (storm) storms++;
      qps.push(p.qps);
      console.log(`  server ${i}: ${Math.round(p.qps)} qps, ${full} full and ${lines.filter((l) => l.includes('Scavenge')).length} young collections in 8 s${storm ? '  <- storm' : ''}`);
    } finally {
      await stopChild(child);
    }
  }
  qps.sort((a, b) => a - b);
  console.log(`gc-storm: ${storms} of ${tries} servers in a full-GC storm; qps median ${Math.round(qps[qps.length >> 1] ?? NaN)}, lowest ${Math.round(qps[0] ?? NaN)}`);
} finally {
  client.close();
  await cleanupAll();
}

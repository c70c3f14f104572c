// bench/gc-observe: a diagnostic preload for a svcdns under bench, never loaded by the server itself. Once a second
// it appends one line to GC_OBSERVE_OUT (default /tmp/svcdns-gc-<pid>.txt):
//   epoch-ms  scavenges  scavenge-ms  mark-compacts  mark-compact-ms  other-gc  other-gc-ms  http-requests  main-cpu-ms  heap-used-MB
// GC counts and durations (main-thread wall time) come from perf_hooks 'gc' entries, HTTP client requests from the
// `http.client.request.start` diagnostics channel (with Consul, the re-reads a change causes show as +1 each), and
// the main thread's CPU from process.threadCpuUsage(). Tells a 50/s window from a 0/s one in the alternating phase
// by its request rate, and what GC and the main thread did in each.
// Usage: BENCH_ONLY=consul BENCH_SVCDNS_ARGS="--import $PWD/bench/gc-observe.ts" npm run bench

import { appendFileSync } from 'node:fs';
import { subscribe } from 'node:diagnostics_channel';
import { constants, PerformanceObserver } from 'node:perf_hooks';

const out = process.env.GC_OBSERVE_OUT ?? `/tmp/svcdns-gc-${process.pid}.txt`;
let minor = 0;
let minorMs = 0;
let major = 0;
let majorMs = 0;
let other = 0;
let otherMs = 0;
let requests = 0;

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      minor++;
      minorMs += e.duration;
    } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
      major++;
      majorMs += e.duration;
    } else {
      other++;
      otherMs += e.duration;
    }
  }
}).observe({ entryTypes: ['gc'] });
subscribe('http.client.request.start', () => {
  requests++;
});

let last = process.threadCpuUsage();
setInterval(() => {
  const c = process.threadCpuUsage();
  const mainMs = (c.user + c.system - last.user - last.system) / 1000;
  last = c;
  const heapMb = process.memoryUsage().heapUsed / 1048576;
  appendFileSync(out, `${Date.now()} ${minor} ${minorMs.toFixed(1)} ${major} ${majorMs.toFixed(1)} ${other} ${otherMs.toFixed(1)} ${requests} ${mainMs.toFixed(0)} ${heapMb.toFixed(1)}\n`);
  minor = minorMs = major = majorMs = other = otherMs = requests = 0;
}, 1000).unref();

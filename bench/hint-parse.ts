// bench/hint-parse: CPU per reply of the Consul health-state hint (issue 11), parsed whole with JSON.parse as
// before, or by the backend's own HintChecks (elements cut and compared natively, only changed ones parsed).
// The replies are in the shape of /v1/health/state/any: H_CHECKS checks not passing (default 1,500), and each
// reply changes 25 of them, as at 50 health changes/s with a reply every 500 ms. Reported, never asserted.
// Usage: npx node --max-semi-space-size=2 --optimize-for-size --no-allocation-site-pretenuring bench/hint-parse.ts (the launchers' Node flags)

import { HintChecks } from '../src/backends/consul/hint-checks.ts';

const N = Number(process.env.H_CHECKS ?? 1500);
const REPLIES = 40;
const check = (i: number, status: string, modifyIndex: number) => ({
  Node: `node-${i % 1000}`, CheckID: `service:svc-${i}-1`, Name: `Service 'svc-${i}' check`, Status: status, Notes: '',
  Output: 'HTTP GET http://10.0.0.1:8080/health: 503 Service Unavailable', ServiceID: `svc-${i}-1`, ServiceName: `svc-${i}`,
  ServiceTags: ['http'], Type: 'http', Interval: '10s', Timeout: '5s', ExposedPort: 0, Definition: {}, CreateIndex: 100 + i, ModifyIndex: modifyIndex,
});
const replies: Buffer[] = [];
let checks = Array.from({ length: N }, (_, i) => check(i, 'critical', 1000 + i));
for (let r = 0; r < REPLIES; r++) {
  const step = Math.max(1, Math.floor(N / 25));
  checks = checks.map((c, i) => (i % step === r % step ? check(i, c.Status === 'critical' ? 'warning' : 'critical', 5000 + r) : c));
  replies.push(Buffer.from(JSON.stringify(checks)));
}

/** Before: the whole reply parsed, and its check keys diffed as a Set against the last reply's. */
function whole(): number {
  let prev: Set<string> | null = null;
  let changed = 0;
  for (const r of replies) {
    const body = JSON.parse(Buffer.from(r).toString('utf8')) as Record<string, unknown>[];
    const now = new Set<string>();
    for (const o of body) now.add(`${String(o['Node'])}\u0000${String(o['ServiceName'])}\u0000${String(o['CheckID'])}\u0000${String(o['Status'])}`);
    if (prev) for (const k of now) if (!prev.has(k)) changed++;
    prev = now;
  }
  return changed;
}

/** Now: what the Consul backend runs (HintChecks). */
function ranges(): number {
  const h = new HintChecks();
  let changed = 0;
  for (const r of replies) h.apply(Buffer.from(r), () => changed++);
  return changed;
}

console.log(`health-state hint replies: ${N} checks not passing, ${(replies[0]!.length / 1024).toFixed(0)} KB each, 25 changed per reply`);
for (let round = 1; round <= 3; round++) {
  const row: string[] = [];
  for (const [name, fn] of [['parsed whole', whole], ['HintChecks (cut, compared, changed parsed)', ranges]] as const) {
    const c0 = process.cpuUsage();
    const changed = fn();
    const c = process.cpuUsage(c0);
    row.push(`${name} ${((c.user + c.system) / 1000 / REPLIES).toFixed(2)} ms (${changed} changes seen)`);
  }
  console.log(`  round ${round}: CPU per reply: ${row.join('; ')}`);
}

// test/unit/consul-hint-checks: what changed between two health-state hint replies (checks not passing):
// each appearing, disappearing or status-changing check reported once, unchanged ones never, the first reply only
// a baseline, and bad replies refused without losing what the last good one said.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HintChecks } from '../../src/backends/consul/hint-checks.ts';
import fc from 'fast-check';

const check = (node: string, id: string, status: string, output = '', service = id) => ({
  Node: node, CheckID: service === '' ? id : `service:${id}`, Name: 'check', Status: status, Notes: '', Output: output,
  ServiceID: service, ServiceName: service, ServiceTags: [], Type: 'http', Definition: {}, CreateIndex: 9, ModifyIndex: 10,
});

function applyAll(h: HintChecks, checks: unknown[] | string): string[] | false {
  const out: string[] = [];
  const ok = h.apply(Buffer.from(typeof checks === 'string' ? checks : JSON.stringify(checks)), (node, svc) => out.push(`${node}/${svc}`));
  return ok ? out.sort() : false;
}

test('hint replies: the first is a baseline; then each changed check once, unchanged ones (even with new output) never', () => {
  const h = new HintChecks();
  const a = check('n1', 'web', 'critical');
  const b = check('n2', 'api', 'warning');
  assert.deepEqual(applyAll(h, [a, b]), []);
  assert.deepEqual(applyAll(h, [a, b]), [], 'the same reply again');
  assert.deepEqual(applyAll(h, [a, check('n2', 'api', 'warning', 'slow again')]), [], 'same status, other output');
  assert.deepEqual(applyAll(h, [a, check('n2', 'api', 'critical')]), ['n2/api'], 'warning -> critical, one report');
  assert.deepEqual(applyAll(h, [check('n2', 'api', 'critical')]), ['n1/web'], 'web passing again: it left the list');
  assert.deepEqual(applyAll(h, [check('n2', 'api', 'critical'), check('n3', 'serfHealth', 'critical', '', '')]), ['n3/'], 'a node-level check names its node');
  assert.deepEqual(applyAll(h, [check('n3', 'serfHealth', 'critical', '', ''), check('n2', 'api', 'critical')]), [], 'order does not matter');
  assert.deepEqual(applyAll(h, []), ['n2/api', 'n3/']);
});

test('hint replies: not an array or not JSON is refused, and the next good reply compares against the last good one', () => {
  const h = new HintChecks();
  const a = check('n1', 'web', 'critical');
  assert.deepEqual(applyAll(h, [a]), []);
  assert.equal(applyAll(h, '{"not":"an array"}'), false);
  assert.throws(() => applyAll(h, '[{"Node":"n1",'), SyntaxError);
  assert.deepEqual(applyAll(h, [a]), [], 'web still listed: nothing changed');
  assert.deepEqual(applyAll(h, [a, 7, null, 'x']), [], 'elements that are not checks are ignored');
  assert.deepEqual(applyAll(h, []), ['n1/web']);
});

test('hint replies: an unchanged check is never parsed, only what changed, appeared or left', () => {
  const h = new HintChecks();
  const all = Array.from({ length: 200 }, (_, i) => check(`n${i % 7}`, `svc-${i}`, 'critical', `out ${i}`));
  assert.deepEqual(applyAll(h, all), []);
  assert.equal(h.parsed, 200, 'the baseline parses every check');
  h.parsed = 0;
  assert.deepEqual(applyAll(h, all), []);
  assert.equal(h.parsed, 0, 'the same reply again: nothing parsed');
  const next = [...all];
  next[50] = check('n1', 'svc-50', 'warning', 'out 50'); // changed
  next.splice(120, 1); // left
  next.splice(10, 0, check('n9', 'new', 'critical')); // appeared
  assert.deepEqual(applyAll(h, next), ['n1/svc-120', 'n1/svc-50', 'n9/new']);
  assert.equal(h.parsed, 2, 'only the changed and the new are parsed: the element after one that left is matched by its bytes');
});

test('hint replies: indented replies, and a check whose nested object has a "Node" key, are read by their brackets', () => {
  const h = new HintChecks();
  const odd = { ...check('n1', 'web', 'critical'), Definition: { Targets: [{ a: 1 }, { Node: 'x', b: '},{"Node":"' }] } };
  const a = check('n2', 'api', 'critical');
  assert.deepEqual(applyAll(h, [odd, a]), []);
  assert.deepEqual(applyAll(h, [odd, { ...a, Status: 'warning' }]), ['n2/api']);
  assert.deepEqual(applyAll(h, JSON.stringify([odd, { ...a, Status: 'warning' }], null, 4)), [], 'the same checks, indented');
  assert.deepEqual(applyAll(h, JSON.stringify([a], null, 4)), ['n1/web', 'n2/api']);
  assert.throws(() => applyAll(h, '[{"Node":"n1","CheckID":"x","Status":"critical"},{"Node":"n2"'), SyntaxError);
  assert.throws(() => applyAll(h, '[{"Node":"n1","CheckID":"x","Status":"critical"},{"Node":"n2"}}]'), SyntaxError);
  assert.deepEqual(applyAll(h, [a]), [], 'compared with the last good reply');
  assert.deepEqual(applyAll(h, [odd]), ['n1/web', 'n2/api']);
});

test('hint replies: any sequence of replies reports exactly the checks whose status differs from the last reply', () => {
  // The model: the whole reply parsed, its checks as key → status, diffed with the reply before.
  const model = (text: string): Map<string, string> => {
    const m = new Map<string, string>();
    for (const o of JSON.parse(text) as unknown[]) {
      if (typeof o !== 'object' || o === null || Array.isArray(o)) continue;
      const r = o as Record<string, unknown>;
      m.set(`${String(r['Node'])}/${String(r['ServiceName'] ?? '')}/${String(r['CheckID'])}`, String(r['Status']));
    }
    return m;
  };
  const id = fc.integer({ min: 0, max: 30 });
  const status = fc.constantFrom('critical', 'warning', 'maintenance', 'passing');
  const output = fc.constantFrom('', 'timeout', '},{"Node":"', 'é"\\');
  const reply = fc.tuple(
    fc.uniqueArray(fc.tuple(id, status, output), { selector: ([i]) => i, maxLength: 25 }),
    fc.constantFrom(undefined, undefined, undefined, 2),
    fc.boolean(),
  ).map(([checks, indent, extra]) => {
    const els: unknown[] = checks.map(([i, st, out]) => check(`n${i % 4}`, `s${i}`, st, out, i % 5 === 0 ? '' : `s${i}`));
    if (extra) els.splice(Math.floor(els.length / 2), 0, 7, null, 'x');
    return JSON.stringify(els, null, indent);
  });
  fc.assert(
    fc.property(fc.array(reply, { minLength: 1, maxLength: 8 }), (replies) => {
      const h = new HintChecks();
      let before: Map<string, string> | null = null;
      for (const text of replies) {
        const now = model(text);
        // One report per changed check, as node/service (a node's checks share it).
        const want: string[] = [];
        const named = (k: string): string => k.slice(0, k.lastIndexOf('/'));
        if (before !== null) {
          for (const [k, v] of now) if (before.get(k) !== v) want.push(named(k));
          for (const k of before.keys()) if (!now.has(k)) want.push(named(k));
        }
        const got = applyAll(h, text);
        assert.ok(got !== false);
        assert.deepEqual(got, want.sort(), text);
        before = now;
      }
    }),
    { numRuns: 800 },
  );
});

// test/unit/consul-hint-checks: what changed between two health-state hint replies (checks not passing):
// each appearing, disappearing or status-changing check reported once, unchanged ones never, the first reply only
// a baseline, and bad replies refused without losing what the last good one said.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HintChecks } from '../../src/backends/consul/hint-checks.ts';
import { eachArrayRange } from '../../src/backends/consul/json-array.ts';

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

test('hint replies: two different checks whose bytes hash alike are still told apart (an element is compared byte for byte)', () => {
  // Find two checks whose elements collide on the 32-bit element hash: node names of 12 pseudo-random letters
  // (a fixed seed), ~2^17 of them give a birthday collision with near certainty.
  let seed = 12345;
  const nodeName = () => {
    let n = '';
    for (let k = 0; k < 12; k++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      n += String.fromCharCode(97 + ((seed >>> 16) % 26));
    }
    return n;
  };
  const seen = new Map<number, string>();
  let pair: [string, string] | null = null as [string, string] | null;
  for (let round = 0; pair === null && round < 50; round++) {
    const names = Array.from({ length: 20_000 }, nodeName);
    const b = Buffer.from(`[${names.map((n) => JSON.stringify(check(n, 'web', 'critical'))).join(',')}]`);
    let k = 0;
    eachArrayRange(b, (_s, _e, hash) => {
      const name = names[k++]!;
      const other = seen.get(hash);
      if (other !== undefined && other !== name && pair === null) pair = [other, name];
      seen.set(hash, name);
    });
  }
  assert.ok(pair, 'found two checks with one hash');
  const [x, y] = pair;
  const h = new HintChecks();
  const cx = check(x, 'web', 'critical');
  const cy = check(y, 'web', 'critical');
  assert.deepEqual(applyAll(h, [cx, cy]), []);
  assert.deepEqual(applyAll(h, [cy, cx]), [], 'both still listed');
  assert.deepEqual(applyAll(h, [cx]), [`${y}/web`], 'the second one left');
  assert.deepEqual(applyAll(h, [cx, cy]), [`${y}/web`], 'back again');
  assert.deepEqual(applyAll(h, [cy]), [`${x}/web`], 'the first one left');
  assert.deepEqual(applyAll(h, [cy, check(x, 'web', 'warning')]), [`${x}/web`]);
});

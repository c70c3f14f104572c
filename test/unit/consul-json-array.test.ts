// test/unit/consul-json-array: a JSON array split into element byte ranges, each parsed alone, gives exactly what
// JSON.parse gives for any array, and is refused exactly when JSON.parse refuses it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { eachArrayRange } from '../../src/backends/consul/json-array.ts';

/** Every element parsed from its range, as a caller that has seen none of them does. */
function eachArrayElement(b: Buffer, each: (element: unknown) => void): boolean {
  return eachArrayRange(b, (start, end) => each(JSON.parse(b.toString('utf8', start, end))));
}

/** What eachArrayElement yields: the elements, `false` for valid non-array JSON, or the error class thrown. */
function run(text: string): unknown[] | false | 'SyntaxError' {
  const out: unknown[] = [];
  try {
    return eachArrayElement(Buffer.from(text, 'utf8'), (e) => out.push(e)) ? out : false;
  } catch (e) {
    assert.ok(e instanceof SyntaxError, `throws SyntaxError, not ${String(e)}`);
    return 'SyntaxError';
  }
}

/** The same, by JSON.parse of the whole text. */
function reference(text: string): unknown[] | false | 'SyntaxError' {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v : false;
  } catch {
    return 'SyntaxError';
  }
}

test('any array, compact or indented: the elements JSON.parse gives, in order, each range without whitespace around it', () => {
  // Strings full of the bytes the scanner cares about: quotes, backslashes, brackets, commas, and non-ASCII.
  const tricky = fc.string({ unit: fc.constantFrom('"', '\\', '[', ']', '{', '}', ',', ' ', 'a', 'é', '€', '😀', '\n', '\u0000') });
  const value = fc.letrec((tie) => ({
    v: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 2 }), tricky, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(tricky, tie('v'), { maxKeys: 3 })),
  })).v;
  fc.assert(
    fc.property(fc.array(value, { maxLength: 12 }), fc.constantFrom(undefined, 1, 4), (arr, indent) => {
      const text = JSON.stringify(arr, null, indent);
      assert.deepEqual(run(text), JSON.parse(text));
      const buf = Buffer.from(text, 'utf8');
      const ws = new Set([0x20, 0x0a, 0x0d, 0x09]);
      eachArrayRange(buf, (a, b) => assert.ok(b > a && !ws.has(buf[a]!) && !ws.has(buf[b - 1]!), `range ${a}..${b}`));
    }),
    { numRuns: 600 },
  );
});

test('valid JSON that is not an array: false, and nothing is called', () => {
  for (const text of ['{}', '{"a":[1,2]}', '"[1,2]"', '12', 'null', ' true ']) {
    assert.equal(run(text), false, text);
  }
});

test('broken arrays are refused exactly when JSON.parse refuses them', () => {
  const fixed = ['["a\\\\"]', '["a\\\\\\"]"]', '[" \\" ]', '', ' ', '[', ']', '[,]', '[,1]', '[1,]', '[1,,2]', '[1 2]', '[1}', '[{]', '[{"a":1]}', '[[1}, 2]', '[1] x', '[1]]', '["a\\"]', '[1,2', '["]"', '[]', '[ ]', ' [ 1 , 2 ] '];
  for (const text of fixed) assert.deepEqual(run(text), reference(text), JSON.stringify(text));
  // One character deleted, replaced or inserted anywhere in a valid array.
  const edit = fc.tuple(fc.array(fc.jsonValue({ maxDepth: 2 }), { minLength: 1, maxLength: 6 }), fc.nat(), fc.constantFrom('', ',', ']', '[', '}', '{', '"', '\\', ' ', '1'), fc.boolean());
  fc.assert(
    fc.property(edit, ([arr, at, ch, replace]) => {
      const good = JSON.stringify(arr);
      const k = at % (good.length + 1);
      const text = good.slice(0, k) + ch + good.slice(replace ? k + 1 : k);
      assert.deepEqual(run(text), reference(text), JSON.stringify(text));
    }),
    { numRuns: 2000 },
  );
});

// test/fuzz/property: run one fast-check property for a fixed number of inputs (never a time: a loaded machine
// only makes it slower) and, when it fails, save the shrunk input under test/fuzz/regressions/ before failing,
// so the next `npm test` replays it even when the seed is lost.

import assert from 'node:assert/strict';
import fc from 'fast-check';
import { saveRegression } from './harness.ts';

export interface Saved {
  readonly target: string;
  readonly bytes: Buffer | string;
  readonly tcp: boolean;
}

/**
 * Check `check(value)` (the violated properties; empty when fine) for `numRuns` generated values. On failure the
 * counterexample is shrunk, saved with `toSaved` and reported with its problems and the seed.
 */
export function property<T>(arb: fc.Arbitrary<T>, numRuns: number, check: (v: T) => string[], toSaved: (v: T) => Saved): void {
  const params: fc.Parameters<[T]> = { numRuns, ...seedParam() };
  const details = fc.check(
    fc.property(arb, (v) => check(v).length === 0),
    params,
  );
  if (!details.failed) return;
  const example = details.counterexample?.[0];
  if (example === undefined) assert.fail(`property failed without a counterexample: ${String(details.errorInstance)}`);
  const problems = check(example);
  const saved = toSaved(example);
  const file = saveRegression(saved.target, saved.bytes, saved.tcp, problems.join('\n'));
  // The input is in the message too: a CI checkout and the file saved in it are gone when the log is read.
  const shown = typeof saved.bytes === 'string' ? JSON.stringify(saved.bytes) : saved.bytes.toString('hex');
  assert.fail(
    `fuzz found a failing input after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath}); saved as ${file}:\n` +
      problems.map((p) => `  - ${p}`).join('\n') +
      `\n  input (${saved.target}${saved.tcp ? ', TCP' : ''}): ${shown.length > 4000 ? `${shown.slice(0, 4000)}...` : shown}`,
  );
}

/**
 * The seed of the bounded fuzz inside `npm test`: fixed, so a run that lands is a run that can be repeated and a
 * red CI is never luck; `FUZZ_SEED=N` picks another, `FUZZ_SEED=random` a fresh one each run. Exploring new
 * inputs is what `npm run fuzz` is for.
 */
export const DEFAULT_TEST_SEED = 20_261_201;

function seedParam(): { seed?: number } {
  const text = process.env.FUZZ_SEED;
  if (text === 'random') return {};
  return { seed: text ? Number(text) : DEFAULT_TEST_SEED };
}

/** Inputs per property inside `npm test`: FUZZ_RUNS_IN_TEST overrides the file's default (e.g. 10 for a smoke run). */
export function runs(defaultRuns: number): number {
  const n = Number(process.env.FUZZ_RUNS_IN_TEST ?? '');
  return Number.isInteger(n) && n > 0 ? n : defaultRuns;
}

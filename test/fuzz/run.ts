// test/fuzz/run: the long fuzz run (`npm run fuzz`). Feeds generated inputs through the targets until
// FUZZ_RUNS inputs (default 1,000,000 for the processor) or FUZZ_SECONDS have passed, whichever comes first,
// and reports the count, the time, the crashes (process() threw, or a SERVFAIL from an internal error) and the
// malformed responses. Every failing input is saved under test/fuzz/regressions/, which `npm test` replays.
//
//   FUZZ_RUNS=1000000 npm run fuzz            # the processor (raw, mutated corpus, structured: a third each)
//   FUZZ_TARGET=config FUZZ_SECONDS=300 npm run fuzz
//   FUZZ_SEED=42 ...                          # reproduce a run (the seed is printed at the start)
//
// Exit code 1 when anything failed.

import fc from 'fast-check';
import { rawInput, mutatedInput, structuredInput, type Input } from './arbitraries.ts';
import { configText, servicesText } from './text-arbitraries.ts';
import { saveRegression, startFuzzServer } from './harness.ts';
import { configTarget, processorTarget, servicesTarget } from './targets.ts';

const target = process.env.FUZZ_TARGET ?? 'processor';
const seconds = Number(process.env.FUZZ_SECONDS ?? '') || Infinity;
const maxRuns = Number(process.env.FUZZ_RUNS ?? '') || (target === 'processor' ? 1_000_000 : 100_000);
const seed = Number(process.env.FUZZ_SEED ?? '') || Math.floor(Math.random() * 0x7fffffff);
const BATCH = 2_000;

interface Tally {
  runs: number;
  crashes: number;
  malformed: number;
  saved: string[];
  kinds: Map<string, number>;
}

function record(t: Tally, problems: string[], save: () => string): void {
  t.runs++;
  if (problems.length === 0) return;
  if (problems.some((p) => p.includes('threw') || p.includes('SERVFAIL'))) t.crashes++;
  else t.malformed++;
  for (const p of problems) {
    const kind = p.replace(/\d+/g, 'N').slice(0, 100);
    t.kinds.set(kind, (t.kinds.get(kind) ?? 0) + 1);
  }
  // Keep the first few of each run: enough to replay, not thousands of copies of one bug.
  if (t.saved.length < 20) t.saved.push(save());
}

async function main(): Promise<void> {
  const t: Tally = { runs: 0, crashes: 0, malformed: 0, saved: [], kinds: new Map() };
  const started = performance.now();
  const deadline = started + seconds * 1000;
  console.log(`fuzz ${target}: up to ${maxRuns} inputs${Number.isFinite(seconds) ? ` or ${seconds} s` : ''}, seed ${seed}`);
  let progressAt = started;
  const progress = () => {
    const now = performance.now();
    if (now - progressAt < 10_000) return;
    progressAt = now;
    console.log(`  ${t.runs} inputs, ${((now - started) / 1000).toFixed(0)} s, ${t.crashes} crashes, ${t.malformed} malformed`);
  };
  let batch = 0;
  const more = () => t.runs < maxRuns && performance.now() < deadline;
  if (target === 'processor') {
    const fuzz = await startFuzzServer();
    try {
      const arbs: fc.Arbitrary<Input>[] = [rawInput, mutatedInput(), structuredInput];
      while (more()) {
        const arb = arbs[batch % arbs.length]!;
        const n = Math.min(BATCH, maxRuns - t.runs);
        for (const input of fc.sample(arb, { numRuns: n, seed: seed + batch })) {
          const problems = processorTarget(fuzz.processor, input);
          record(t, problems, () => saveRegression('processor', input.msg, input.tcp, problems.join('\n')));
        }
        batch++;
        progress();
      }
    } finally {
      await fuzz.stop();
    }
  } else if (target === 'config' || target === 'services') {
    const arb = target === 'config' ? configText : servicesText;
    while (more()) {
      const n = Math.min(BATCH, maxRuns - t.runs);
      for (const { text, fileName } of fc.sample(arb, { numRuns: n, seed: seed + batch })) {
        const problems = target === 'config' ? configTarget(text, fileName) : servicesTarget(text, fileName);
        record(t, problems, () => saveRegression(`${target}-${fileName.endsWith('.json') ? 'json' : 'yaml'}`, text, false, problems.join('\n')));
      }
      batch++;
      progress();
    }
  } else {
    throw new Error(`FUZZ_TARGET=${target}: expected processor, config or services`);
  }
  const secs = (performance.now() - started) / 1000;
  console.log(`fuzz ${target}: ${t.runs} inputs in ${secs.toFixed(1)} s (${Math.round(t.runs / secs)}/s), ${t.crashes} crashes, ${t.malformed} malformed, seed ${seed}`);
  for (const [k, n] of [...t.kinds].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${n} × ${k}`);
  for (const f of t.saved) console.log(`  saved ${f}`);
  if (t.crashes + t.malformed > 0) process.exitCode = 1;
}

await main();

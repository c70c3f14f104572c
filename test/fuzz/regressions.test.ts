// Replays every input a fuzz run saved (test/fuzz/regressions/*.json: written by `npm run fuzz` and by the
// bounded fuzz in `npm test` when a property fails), through the same target and oracle that caught it.
// Each file names its target ("processor", "config-yaml", "services-json", ...) and what was wrong.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadRegressions, startFuzzServer, type FuzzServer } from './harness.ts';
import { configTarget, processorTarget, servicesTarget } from './targets.ts';
import { encoderTarget, loadEncodeCase, parserTarget } from './wire-targets.ts';

const saved = loadRegressions();

describe('fuzz regressions: saved failing inputs stay fixed', () => {
  let fuzz: FuzzServer | undefined;
  before(async () => {
    if (saved.some((r) => r.target === 'processor')) fuzz = await startFuzzServer();
  });
  after(async () => {
    await fuzz?.stop();
  });

  it('the regression files are read (none is lost to a bad name)', () => {
    for (const r of saved) assert.match(r.target, /^(processor|parser|encoder|config-(yaml|json)|services-(yaml|json))$/, r.file);
  });

  for (const r of saved) {
    it(`${r.file}: ${r.note.split('\n')[0]}`, () => {
      const text = r.bytes.toString('utf8');
      const ext = r.target.endsWith('json') ? 'json' : 'yaml';
      const problems =
        r.target === 'processor'
          ? processorTarget(fuzz!.processor, { msg: r.bytes, tcp: r.tcp, tail: Buffer.alloc(0) })
          : r.target === 'parser'
            ? parserTarget({ msg: r.bytes, tcp: r.tcp, tail: Buffer.alloc(0) })
            : r.target === 'encoder'
              ? encoderTarget(loadEncodeCase(text))
              : r.target.startsWith('config')
            ? configTarget(text, `svcdns.${ext}`)
            : servicesTarget(text, `services.${ext}`);
      assert.deepEqual(problems, [], `${r.file}, saved because:\n${r.note}`);
    });
  }
});

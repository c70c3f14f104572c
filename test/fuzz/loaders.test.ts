// Fuzz (bounded, issue 12 item 3): the config loader (YAML text → validated config) and the services-file
// parser (YAML/JSON text → service definitions) never crash: each input gives a valid result or one error with
// a stable code whose every problem is located — the file, the line, the key path and the reason
// (architecture rule 5). Inputs: valid documents with values replaced, keys added or dropped, written as
// block YAML, flow YAML or JSON; text mutations of the sample files; and arbitrary text.

import { describe, it } from 'node:test';
import { configText, servicesText, type TextInput } from './text-arbitraries.ts';
import { property, runs } from './property.ts';
import { configTarget, servicesTarget } from './targets.ts';

const savedAs = (target: string) => (t: TextInput) => ({ target: `${target}-${t.fileName.endsWith('.json') ? 'json' : 'yaml'}`, bytes: t.text, tcp: false });

describe('fuzz: the config loader and the services-file parser (architecture rule 5)', () => {
  it('config text: a frozen valid config or a ConfigError with file, line, path and reason', () => {
    property(configText, runs(800), (t) => configTarget(t.text, t.fileName), savedAs('config'));
  });

  it('services file text: valid services or one BAD_DATA error whose every problem has a line, a path and a reason', () => {
    property(servicesText, runs(1200), (t) => servicesTarget(t.text, t.fileName), savedAs('services'));
  });
});

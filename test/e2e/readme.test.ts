// e2e: README.md cannot drift (in the spirit of CoreDNS's readme_test). Every `dig` command in a ```sh block that
// is followed by a ```text output block is run against svcdns serving the sample config; the records printed in
// the README (order-insensitive, TTLs included, the SOA serial masked) and, when shown, the status and header
// flags must equal what dig prints now.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, copySampleConfig, requireTool, run, startSvcdns, tempDir, type SvcdnsProcess } from './harness.ts';

const README = join(REPO, 'README.md');
/** The README's examples query `npm start`'s address; the test swaps in its own port. */
const DOC_PORT = '8653';
/** Fewer than this many checked examples means the extraction broke (the test must not pass on nothing). */
const MIN_EXAMPLES = 8;

interface Block {
  readonly lang: string;
  readonly body: string;
  readonly line: number;
}

function codeBlocks(markdown: string): Block[] {
  const out: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    out.push({ lang: open[1]!, body: body.join('\n'), line: start + 1 });
  }
  return out;
}

interface Example {
  readonly command: string;
  readonly output: string;
  readonly line: number;
}

/** `sh` blocks holding one dig command, immediately followed (blank lines only) by a `text` block. */
function examples(markdown: string): { checked: Example[]; unchecked: string[] } {
  const blocks = codeBlocks(markdown);
  const lines = markdown.split('\n');
  const checked: Example[] = [];
  const unchecked: string[] = [];
  blocks.forEach((b, i) => {
    if (b.lang !== 'sh') return;
    const cmds = b.body.split('\n').map((l) => l.replace(/^\$\s+/, '').trim()).filter((l) => l.startsWith('dig '));
    if (cmds.length === 0) return;
    const next = blocks[i + 1];
    const closeLine = b.line + b.body.split('\n').length + 1; // 1-based line of the closing fence
    const between = next ? lines.slice(closeLine, next.line - 1) : ['x'];
    const adjacent = next?.lang === 'text' && between.every((l) => l.trim() === '');
    if (adjacent && cmds.length === 1 && b.body.trim() === cmds[0]) checked.push({ command: cmds[0]!, output: next.body, line: b.line });
    else unchecked.push(...cmds);
  });
  return { checked, unchecked };
}

/** The comparable parts of dig output: record lines (normalised), status, header flags. */
function digest(text: string): { records: string[]; status: string | null; flags: string | null } {
  const records = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith(';'))
    .map((l) => l.replace(/\s+/g, ' '))
    // The SOA serial grows whenever served data changes (§1.3); mask it, keep everything else.
    .map((l) => l.replace(/^(\S+ \d+ IN SOA \S+ \S+ )\d+ /, '$1SERIAL '))
    .sort();
  const status = /status: ([A-Z0-9]+)/.exec(text)?.[1] ?? null;
  const flags = /;; flags: ([^;]*);/.exec(text)?.[1]?.trim().split(/\s+/).sort().join(' ') ?? null;
  return { records, status, flags };
}

let svc: SvcdnsProcess;
let tmp: ReturnType<typeof tempDir>;

before(async () => {
  requireTool('dig');
  tmp = tempDir();
  svc = await startSvcdns(copySampleConfig(tmp.dir));
});
after(async () => {
  await svc?.stop();
  tmp?.cleanup();
});

test('README dig examples print what svcdns answers now (records with TTLs, status, flags)', { timeout: 20_000 }, async () => {
  const { checked, unchecked } = examples(readFileSync(README, 'utf8'));
  assert.ok(checked.length >= MIN_EXAMPLES, `only ${checked.length} checked dig examples found in README.md`);
  // An example against the server's port without an output block would be documentation nobody checks.
  assert.deepEqual(unchecked.filter((c) => c.includes(`-p ${DOC_PORT}`)), [], 'dig commands against svcdns need an output block');

  for (const ex of checked) {
    const where = `README.md:${ex.line}: ${ex.command}`;
    assert.doesNotMatch(ex.command, /[|;&$`'"<>]/, `${where}: keep examples free of shell syntax`);
    const args = ex.command.split(/\s+/).slice(1);
    const p = args.indexOf('-p');
    assert.ok(args.includes('@127.0.0.1') && p >= 0 && args[p + 1] === DOC_PORT, `${where}: must query @127.0.0.1 -p ${DOC_PORT}`);
    args[p + 1] = String(svc.port);
    const r = await run(requireTool('dig'), [...args, '+time=5', '+tries=4']);
    assert.equal(r.code, 0, `${where}: dig failed: ${r.stderr}`);

    const doc = digest(ex.output);
    const now = digest(r.stdout);
    assert.deepEqual(now.records, doc.records, `${where}: records differ (got:\n${r.stdout})`);
    if (doc.status !== null) assert.equal(now.status, doc.status, `${where}: status`);
    if (doc.flags !== null) assert.equal(now.flags, doc.flags, `${where}: flags`);
  }
});

// Unit: the package's dependencies match what the code imports (issue 13, "Packaging and logs"). A runtime
// dependency nothing in src/ imports is dead weight in every install (consul was); a package that src/ imports at
// run time but that is only a devDependency breaks `npm ci --omit=dev` installs (Docker, systemd). Imports are
// read with the TypeScript parser: `import type` is erased, every other form (static, `export ... from`,
// dynamic `import()`, `import { type X }`, which verbatimModuleSyntax keeps as a side-effect import) loads the module.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Pkg {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  files?: string[];
  license?: string;
}
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Pkg;
const runtimeDeps = new Set(Object.keys(pkg.dependencies ?? {}));
const devDeps = new Set(Object.keys(pkg.devDependencies ?? {}));

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`; relative paths and builtins → null. */
function packageOf(spec: string): string | null {
  if (spec.startsWith('.') || spec.startsWith('/') || isBuiltin(spec)) return null;
  const parts = spec.split('/');
  return spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** The packages a file imports, split into loaded at run time and type-only. */
function importsOf(file: string): { runtime: Set<string>; typeOnly: Set<string> } {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const runtime = new Set<string>();
  const typeOnly = new Set<string>();
  const add = (spec: ts.Expression | undefined, erased: boolean) => {
    if (spec === undefined || !ts.isStringLiteral(spec)) return;
    const name = packageOf(spec.text);
    if (name !== null) (erased ? typeOnly : runtime).add(name);
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, node.importClause?.isTypeOnly === true);
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, node.isTypeOnly);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0], false);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal as ts.Expression, true);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return { runtime, typeOnly };
}

function importsUnder(dir: string): { runtime: Map<string, string>; typeOnly: Map<string, string> } {
  const runtime = new Map<string, string>();
  const typeOnly = new Map<string, string>();
  for (const file of tsFiles(join(ROOT, dir))) {
    const rel = file.slice(ROOT.length);
    const i = importsOf(file);
    for (const p of i.runtime) if (!runtime.has(p)) runtime.set(p, rel);
    for (const p of i.typeOnly) if (!typeOnly.has(p)) typeOnly.set(p, rel);
  }
  return { runtime, typeOnly };
}

describe('package.json dependencies match the imports (issue 13)', () => {
  const src = importsUnder('src');

  it('every runtime dependency is imported at run time by src/', () => {
    const unused = [...runtimeDeps].filter((d) => !src.runtime.has(d));
    assert.deepEqual(unused, [], `runtime dependencies nothing in src/ loads (remove them, or move them to devDependencies): ${unused.join(', ')}`);
  });

  it('every package src/ loads at run time is a runtime dependency', () => {
    const missing = [...src.runtime].filter(([d]) => !runtimeDeps.has(d)).map(([d, file]) => `${d} (${file})`);
    assert.deepEqual(missing, [], `imported by src/ but not in "dependencies": ${missing.join(', ')}`);
  });

  it('type-only imports in src/, and the imports of test/ and bench/, are declared (dependencies or devDependencies)', () => {
    const declared = (d: string) => runtimeDeps.has(d) || devDeps.has(d) || devDeps.has(`@types/${d.replace(/^@([^/]+)\//, '$1__')}`);
    const undeclared: string[] = [];
    for (const [d, file] of src.typeOnly) if (!declared(d)) undeclared.push(`${d} (${file})`);
    for (const dir of ['test', 'bench']) {
      const i = importsUnder(dir);
      for (const [d, file] of [...i.runtime, ...i.typeOnly]) if (!declared(d)) undeclared.push(`${d} (${file})`);
    }
    assert.deepEqual(undeclared, []);
  });

  it('the lockfile records the same dependencies as package.json (npm ci installs what is declared)', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Pkg> };
    const root = lock.packages[''] ?? {};
    assert.deepEqual(Object.keys(root.dependencies ?? {}).sort(), [...runtimeDeps].sort());
    assert.deepEqual(Object.keys(root.devDependencies ?? {}).sort(), [...devDeps].sort());
  });

  it('ships a LICENSE with the Apache-2.0 text package.json names, and a files list without tests or sources', () => {
    assert.equal(pkg.license, 'Apache-2.0');
    const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    assert.match(license, /Apache License\s+Version 2\.0, January 2004/);
    assert.match(license, /END OF TERMS AND CONDITIONS/);
    const files = pkg.files ?? [];
    assert.ok(files.includes('bin/') && files.includes('dist/'), `files: ${files.join(', ')}`);
    for (const dir of ['src/', 'test/', 'bench/', 'node_modules/']) assert.ok(!files.includes(dir), `${dir} must not be shipped`);
  });
});

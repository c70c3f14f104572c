#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=2 --optimize-for-size --no-allocation-site-pretenuring
// svcdns entry point: the package's `svcdns` bin and what `npm start` runs. Plain JavaScript on purpose: it must
// run on any Node.js, so that an old one (say the distribution's Node 20, before `npm ci` installed Node 24) gets
// one clear line and exit 1 instead of a stack trace about ".ts".
//
// Then it runs the TypeScript sources (src/cli.ts), or the build (dist/cli.js) only when that build is at least
// as new as every file and directory under src/ (issue 9: after `npm run build` and an edit, the old build must
// never run silently). A copy installed without src/ (systemd, Docker) runs dist/; so does an npm tarball, whose
// files all carry the same timestamp.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const MIN_NODE_MAJOR = 24;
const found = process.versions.node;
if (!(Number(found.split('.')[0]) >= MIN_NODE_MAJOR)) {
  process.stderr.write(`svcdns needs Node.js >= ${MIN_NODE_MAJOR} (found ${found}); run npm ci, which installs it\n`);
  process.exit(1);
}

/** [oldest, newest] mtime (ms) of the entries under `dir` that `want` accepts, and of `dir` and its subdirectories. */
function mtimeRange(dir, want) {
  let oldest = Infinity;
  let newest = -Infinity;
  const walk = (d) => {
    const dirMs = statSync(d).mtimeMs;
    if (want === null) {
      // A deleted or renamed source file changes only its directory's mtime.
      newest = Math.max(newest, dirMs);
    }
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (want === null || want(e.name)) {
        const ms = statSync(p).mtimeMs;
        oldest = Math.min(oldest, ms);
        newest = Math.max(newest, ms);
      }
    }
  };
  walk(dir);
  return [oldest, newest];
}

/** The build, when it exists and no source is newer than its oldest output; else the sources. */
function entry() {
  const src = fileURLToPath(new URL('../src', import.meta.url));
  const dist = fileURLToPath(new URL('../dist', import.meta.url));
  const built = `${dist}/cli.js`;
  if (!existsSync(built)) return `${src}/cli.ts`;
  if (!existsSync(src)) return built;
  const [oldestBuilt] = mtimeRange(dist, (name) => name.endsWith('.js'));
  const [, newestSource] = mtimeRange(src, null);
  return oldestBuilt >= newestSource ? built : `${src}/cli.ts`;
}

const { main } = await import(pathToFileURL(entry()).href);
process.exit(await main(process.argv.slice(2)));

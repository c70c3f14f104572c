// require-node: stops svcdns on a Node.js older than it needs, before any other svcdns module runs. cli.ts imports
// it first (ES modules run in import order), so `node dist/cli.js` on an old Node (the systemd unit's ExecStart)
// prints why and exits 1 instead of exiting 0 silently or failing later. bin/svcdns.js repeats the check in plain
// JavaScript, because on Node 20 a .ts file cannot even be loaded.

/** Oldest major version svcdns runs on (type stripping, `import.meta.main`, package.json `engines`). */
export const MIN_NODE_MAJOR = 24;

/** The message for an unsupported Node version, or null when `version` (e.g. "20.20.2") is new enough. */
export function nodeVersionProblem(version: string): string | null {
  if (Number(version.split('.')[0]) >= MIN_NODE_MAJOR) return null;
  return `svcdns needs Node.js >= ${MIN_NODE_MAJOR} (found ${version}); run npm ci, which installs it`;
}

const problem = nodeVersionProblem(process.versions.node);
if (problem !== null) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}

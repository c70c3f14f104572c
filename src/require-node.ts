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

/**
 * Node flags every shipped launcher passes to the server (package.json `start`, bin/svcdns.js's shebang, the
 * Dockerfile, the systemd unit, `npm run bench`; test/e2e/launchers.test.ts checks they agree). Issue 11 item 4
 * (RSS at 10k services x 10 instances):
 * - `--max-semi-space-size=2`: on a large machine Node 24 lets the young generation grow to 128 MB, which a DNS
 *   server that allocates almost nothing per query never needs and the kernel then counts as RSS for the life of
 *   the process (measured: ~100 MB less RSS after a 10k-service sync);
 * - `--optimize-for-size`: V8 grows the old generation less eagerly between collections. Consul at 50 health
 *   changes/s left its heap 40 MB above the live data (garbage of the change replies awaiting a full GC); with
 *   it, 148 MB RSS after the load phases instead of 185-190, at no measured loss of qps (npm run bench).
 * - `--no-allocation-site-pretenuring`: V8 decides per allocation site, from the share of its objects that
 *   survive a young-generation collection, to allocate that site's objects straight in the old generation, and a
 *   tenured site stays tenured (its objects no longer pass through the young generation, so nothing shows it
 *   was wrong). Now and then (3 of ~24 bench processes) a site used by every
 *   answer was tenured while the sync or the warm-up kept its objects alive: ~150 B of every query then went
 *   to the old generation (15 MB/s at 100k qps), a full collection ran every ~230 ms for the life of the
 *   process, and it answered 20–25 % fewer queries (78k against 100–106k qps, its GC threads at 35 % of a core
 *   instead of 3 %). Without pretenuring, long-lived data is promoted by the young collections instead: the
 *   same sync time (1.3–1.4 s for the 10k × 10 file) and RSS (124–139 MB after the load). `bench/gc-storm.ts`
 *   starts fresh servers and counts storms: 2 of 16 without the flag, 0 of 16 with it, interleaved.
 * V8 reads these only when the heap is created, so they must be on the command line (NODE_OPTIONS refuses
 * --optimize-for-size).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--optimize-for-size', '--no-allocation-site-pretenuring'];

/**
 * Environment every shipped launcher sets for the server (the same launchers; test/e2e/launchers.test.ts):
 * - `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates its own malloc arena, up to 8 per core (V8's
 *   compiler and GC threads, libuv's pool), and each arena keeps what was freed in it. With two, Consul at 10k
 *   services x 10 held 150-151 MB RSS after a one-round realistic bench instead of 157-160 (7-9 MB less outside
 *   the V8 heap; README "Memory"). glibc reads it when the process starts, so it must be in the environment
 *   node starts with; musl ignores it. `npm start` keeps a value already set; the others set 2, which an operator
 *   overrides as any variable of that launcher (docker -e, a systemd drop-in).
 */
export const SERVER_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** The SERVER_ENV names not set in `env` (any value counts as set: an operator's own choice stands). */
export function missingServerEnv(env: NodeJS.ProcessEnv): string[] {
  return Object.keys(SERVER_ENV).filter((k) => env[k] === undefined || env[k] === '');
}

/** The SERVER_NODE_FLAGS this process was not started with (its execArgv and NODE_OPTIONS), by flag name. */
export function missingServerFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].map((a) => a.split('=')[0]!.replace(/_/g, '-'));
  return SERVER_NODE_FLAGS.filter((f) => !given.includes(f.split('=')[0]!));
}

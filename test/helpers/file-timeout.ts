// test/helpers/file-timeout: the per-file bounds of `npm test`, preloaded with `--import`. node:test's
// `--test-timeout` bounds each test; this module bounds the rest of a test file's life, in the per-file child
// processes only (node:test sets NODE_TEST_CONTEXT there, never in the runner):
// - a file still alive LEAK_GRACE_MS after its last test and hook finished is kept alive by something a test
//   started and did not stop (a server, a child, a timer): it fails, naming the file and what is still open;
// - a file that does not finish within FILE_TIMEOUT_MS (stuck outside any test: top-level await, a hook) fails,
//   named.
// Not `--test-force-exit`: it calls process.exit while the child's report is still in the pipe to the runner,
// and on a loaded machine the runner then silently counted 10-20 fewer tests (seen here, exit 0, no failure).

import { after } from 'node:test';

const FILE_TIMEOUT_MS = Number(process.env.SVCDNS_TEST_FILE_TIMEOUT_MS) || 300_000;
/** Time for the report to drain to the runner and for closing handles to close, before a leak is declared. */
const LEAK_GRACE_MS = Number(process.env.SVCDNS_TEST_LEAK_GRACE_MS) || 15_000;

function fail(why: string): never {
  const open = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'PipeWrap');
  process.stderr.write(`\n${process.argv[1] ?? '(unknown test file)'}: ${why}; still open: ${open.join(', ') || 'nothing'}\n`);
  process.exit(124);
}

if (process.env.NODE_TEST_CONTEXT) {
  // unref: neither timer is ever the reason a file stays alive; a file whose handles are all closed just exits.
  setTimeout(() => fail(`did not finish within ${FILE_TIMEOUT_MS} ms`), FILE_TIMEOUT_MS).unref();
  after(() => {
    setTimeout(() => fail(`its tests finished ${LEAK_GRACE_MS} ms ago but something they started keeps it alive`), LEAK_GRACE_MS).unref();
  });
}

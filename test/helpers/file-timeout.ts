// test/helpers/file-timeout: a per-file limit for `npm test`, preloaded with `--import`. node:test's
// `--test-timeout` bounds each test and `--test-force-exit` ends a file whose tests are done but whose handles
// (a leaked server, a child) would keep it alive; neither bounds a file stuck outside any test (top-level
// await, a hook). This timer does: it names the file and exits non-zero, so the run ends with a clear failure.
// It runs only in the per-file child processes (node:test sets NODE_TEST_CONTEXT there), never in the runner.

const FILE_TIMEOUT_MS = Number(process.env.SVCDNS_TEST_FILE_TIMEOUT_MS) || 300_000;

if (process.env.NODE_TEST_CONTEXT) {
  const timer = setTimeout(() => {
    process.stderr.write(`\ntest file did not finish within ${FILE_TIMEOUT_MS} ms: ${process.argv[1] ?? '(unknown file)'}\n`);
    process.exit(124);
  }, FILE_TIMEOUT_MS);
  // Never the reason a file stays alive: when everything else has ended, the file may exit.
  timer.unref();
}

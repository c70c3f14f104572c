// test/helpers/deadline: the one bound on waiting in tests. A test waits for an event (an answer that changed,
// a metric, a log line); this deadline only turns a hang into a failure, so it is generous on purpose: a loaded
// machine may be 10-20x slower than an idle one, and a correct test must still pass there.

/** How long any wait in a test may take before it is a failure (ms); SVCDNS_TEST_DEADLINE_MS overrides it. */
export const HANG_DEADLINE_MS = Number(process.env.SVCDNS_TEST_DEADLINE_MS) || 30_000;

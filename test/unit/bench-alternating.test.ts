// The alternating phase of `npm run bench` (issue 11): which of dnsperf's one-second intervals count for which
// change rate. A wrong sort here would move the 50/s ÷ 0/s ratio the closing notes report.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alternatingRatio, classifyIntervals, parseIntervals } from '../../bench/realistic.ts';

const OUTPUT = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -p 5399 -d q.txt -l 3 -S 1 -c 1 -q 20
[Status] Sending queries (to 127.0.0.1:5399)
[Status] Started at: Tue Dec  1 20:59:32 2026
[Status] Stopping after 3.000000 seconds
1796158773.487684: 0.000034
1796158774.488818: 60769.087854
1796158775.489001: 59001.5
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         188694
  Queries per second:   62894.331164
`;

describe('bench: the alternating phase (issue 11)', () => {
  it('reads every -S line of a dnsperf output, and nothing else', () => {
    assert.deepEqual(parseIntervals(OUTPUT), [
      { t: 1796158773.487684, qps: 0.000034 },
      { t: 1796158774.488818, qps: 60769.087854 },
      { t: 1796158775.489001, qps: 59001.5 },
    ]);
  });

  it('an interval counts for the window that holds it whole, from skipS after its start; others for neither', () => {
    // Windows of 4 s: 0/s [100, 104), 50/s [104, 108), 0/s [108, 112). Intervals end at 100.3, 101.3, ... 111.3.
    const windows = [{ start: 100, end: 104, on: false }, { start: 104, end: 108, on: true }, { start: 108, end: 112, on: false }];
    const points = Array.from({ length: 12 }, (_, i) => ({ t: 100.3 + i, qps: 1000 + i }));
    const { off, on } = classifyIntervals(points, windows, 1);
    // (101.3, 102.3] and (102.3, 103.3] in the first window; (103.3, 104.3] crosses the switch; (104.3, 105.3]
    // starts within 1 s of it; (100.3, 101.3] too.
    assert.deepEqual(off.map((x) => x.t), [102.3, 103.3, 110.3, 111.3]);
    assert.deepEqual(on.map((x) => x.t), [106.3, 107.3]);
    // With no skip, the interval right after a switch counts for the new rate.
    assert.deepEqual(classifyIntervals(points, windows, 0).on.map((x) => x.t), [105.3, 106.3, 107.3]);
  });

  it('the ratio is of the means, over the whole run or the intervals ending in [from, to)', () => {
    const a = {
      off: [{ t: 1, qps: 100 }, { t: 2, qps: 300 }, { t: 9, qps: 400 }],
      on: [{ t: 5, qps: 180 }, { t: 12, qps: 360 }],
    };
    assert.equal(alternatingRatio(a), 270 / (800 / 3));
    assert.equal(alternatingRatio(a, -Infinity, 6), 180 / 200);
    assert.equal(alternatingRatio(a, 6), 360 / 400);
  });
});

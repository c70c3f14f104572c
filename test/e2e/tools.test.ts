// e2e: the external tools the e2e tests drive are installed, and a missing one is a failure that names the
// Debian package to install (never a silent pass).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireTool, run, TOOL_PACKAGES, type Tool } from './harness.ts';

test('dig, kdig, dnsmasq and dnsperf are installed (.ci/run installs them)', async () => {
  for (const tool of Object.keys(TOOL_PACKAGES) as Tool[]) {
    const bin = requireTool(tool);
    // Each prints a version and exits 0: the binary runs, it is not a stale path.
    // unbound: -V prints the version (its -v means verbose and would start a resolver).
    const r = await run(bin, tool === 'dnsperf' ? ['-h'] : tool === 'kdig' || tool === 'promtool' ? ['--version'] : tool === 'unbound' ? ['-V'] : ['-v'], 5000);
    assert.ok(r.stdout.length + r.stderr.length > 0, `${tool} printed nothing`);
  }
});

test('a missing tool throws naming the Debian package, and says CI is broken under CI=true', () => {
  assert.throws(() => requireTool('kdig', { PATH: '/nonexistent' }), /kdig not found: install the Debian package knot-dnsutils/);
  assert.throws(() => requireTool('dig', { PATH: '/nonexistent', CI: 'true' }), /bind9-dnsutils.*CI=true/);
});

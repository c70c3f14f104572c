// test/helpers/server: start the real app (real UDP+TCP listeners on 127.0.0.1, a free port) from a raw config
// object as it would appear in YAML, validated by the real schema.

import { startApp, type App, type AppOptions } from '../../src/app.ts';
import { validateConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { join } from 'node:path';
import { HANG_DEADLINE_MS } from './deadline.ts';

export interface TestServer {
  readonly port: number;
  readonly app: App;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Directory relative backend paths resolve against. */
  configDir?: string;
  env?: Record<string, string | undefined>;
  logLevel?: 'silent' | 'debug' | 'info';
  extra?: Partial<AppOptions>;
}

export async function startServer(raw: Record<string, unknown>, opts: StartOptions = {}): Promise<TestServer> {
  const config = validateConfig({ listen: '127.0.0.1:0', ...raw }, 'test-config');
  const app = await startApp({
    config,
    configPath: opts.configDir ? join(opts.configDir, 'svcdns.yaml') : undefined,
    logger: createLogger(opts.logLevel ?? 'silent'),
    env: opts.env ?? {},
    ...opts.extra,
  });
  const port = app.dnsAddresses[0]!.port;
  return { port, app, stop: () => app.stop(500) };
}

/**
 * Poll `fn` until it returns a truthy value (no fixed sleeps in tests). The deadline only bounds a hang: a test
 * waits for the event, never for a time.
 */
export async function waitFor<T>(fn: () => Promise<T> | T, timeoutMs = HANG_DEADLINE_MS, intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`waitFor timed out after ${timeoutMs} ms; last: ${last instanceof Error ? last.message : String(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

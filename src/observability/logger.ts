// observability/logger: the pino logger factory. JSON to stdout by default; nothing is logged per query.
// Lines look like Consul's `-log-json`: `"level":"info"` (a string, not pino's number), `"time"` in ISO 8601.

import pino, { type Logger, type DestinationStream, type LoggerOptions } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/**
 * Options every svcdns log shares (the main log, the workers' and the query log): string levels and ISO
 * timestamps, so `jq 'select(.level=="error")'` works and a line reads the same whichever log wrote it.
 */
export function logOptions(level: LogLevel, base: Record<string, unknown>): LoggerOptions {
  return {
    level,
    base,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
}

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const opts = logOptions(level, { app: 'svcdns' });
  return destination ? pino(opts, destination) : pino(opts);
}

export type { Logger };

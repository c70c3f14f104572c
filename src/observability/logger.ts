// observability/logger: the pino logger factory. JSON to stdout by default; nothing is logged per query.

import pino, { type Logger, type DestinationStream } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const opts = { level, base: { app: 'svcdns' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(opts, destination) : pino(opts);
}

export type { Logger };

// cli: argv → config → app, signals, exit codes (0 ok, 1 runtime failure, 2 bad usage or bad config).

// First: on an old Node it exits with a clear message before any other module runs.
import { missingServerEnv, missingServerFlags, SERVER_ENV, SERVER_NODE_FLAGS } from './require-node.ts';
import { readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startApp } from './app.ts';
import { checkConfig, checkServicesText } from './config/check.ts';
import { ConfigError, loadConfigFile, loadConfigLocated, type ConfigOverrides } from './config/load.ts';
import { watchConfigFile, type ConfigWatcher } from './config/watch.ts';
import { createLogger, type LogLevel } from './observability/logger.ts';

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_CONFIG = 2;
/** Bound on a graceful stop (ms): listeners close, TCP queries in flight are answered. */
export const SHUTDOWN_GRACE_MS = 5000;

const USAGE = `Usage:
  svcdns [--config FILE] [--listen HOST:PORT ...] [--log-level LEVEL] [--pid-file FILE]
  svcdns check-config FILE
  svcdns check-config --services FILE
  svcdns --help | --version

Serves healthy instances from a service registry as DNS (A, AAAA, SRV).

Options:
  -c, --config FILE      config file (default: config/svcdns.yaml)
  -l, --listen ADDR      listen address, repeatable; overrides "listen" (env SVCDNS_LISTEN, comma-separated)
      --log-level LEVEL  fatal|error|warn|info|debug|trace|silent; overrides "log.level" (env SVCDNS_LOG_LEVEL)
      --admin-listen ADDR  admin HTTP server address, or "off"; overrides "admin" (env SVCDNS_ADMIN_LISTEN)
      --services FILE    with check-config: validate a services file (type: file) on its own
      --pid-file FILE    write the process ID to FILE while running (for kill -HUP $(cat FILE))
  -h, --help             this text
  -v, --version          the version

Signals: TERM/INT stop (first shutdown.lameDuckMs of /readyz 503 while still answering, then queries already
received are answered; a second signal exits at once),
HUP reloads the config file (a bad file is rejected and the running config stays).

Exit codes: 0 ok, 1 runtime failure (e.g. address in use), 2 bad usage or bad config.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[], env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        listen: { type: 'string', short: 'l', multiple: true },
        'log-level': { type: 'string' },
        'admin-listen': { type: 'string' },
        services: { type: 'string' },
        'pid-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    process.stderr.write(`svcdns: ${(err as Error).message}\n\n${USAGE}\n`);
    return EXIT_CONFIG;
  }
  const { values, positionals } = args;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (values.version) {
    process.stdout.write(`svcdns ${version()}\n`);
    return EXIT_OK;
  }
  // A bad value is reported as the flag or variable it came from (`--listen: nope: ...`), not as a file line.
  const overrides: ConfigOverrides = {
    listen: values.listen ?? env.SVCDNS_LISTEN?.split(',').map((s) => s.trim()).filter(Boolean),
    logLevel: values['log-level'] ?? env.SVCDNS_LOG_LEVEL,
    adminListen: values['admin-listen'] ?? env.SVCDNS_ADMIN_LISTEN,
    sources: {
      listen: values.listen !== undefined ? '--listen' : 'SVCDNS_LISTEN',
      logLevel: values['log-level'] !== undefined ? '--log-level' : 'SVCDNS_LOG_LEVEL',
      adminListen: values['admin-listen'] !== undefined ? '--admin-listen' : 'SVCDNS_ADMIN_LISTEN',
    },
  };

  if (positionals[0] === 'check-config') {
    if (values.services !== undefined) return checkServicesFile(values.services);
    const file = positionals[1] ?? values.config;
    if (!file) {
      process.stderr.write(`svcdns: check-config needs a FILE (or --services FILE)\n\n${USAGE}\n`);
      return EXIT_CONFIG;
    }
    let located;
    try {
      located = loadConfigLocated(file, overrides);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      return err instanceof ConfigError ? EXIT_CONFIG : EXIT_RUNTIME;
    }
    // Every check startup makes, the files each backend reads included: a config that passes here serves.
    const problems = await checkConfig(located.config, { file, lineOf: located.lineOf, env, full: true });
    if (problems.length > 0) {
      process.stderr.write(`${problems.map((p) => p.message).join('\n')}\n`);
      return EXIT_CONFIG;
    }
    const cfg = located.config;
    process.stdout.write(`${file}: OK (${cfg.backends.length} backend(s): ${cfg.backends.map((b) => b.name ?? b.type).join(', ')})\n`);
    return EXIT_OK;
  }
  if (values.services !== undefined) {
    process.stderr.write(`svcdns: --services goes with check-config\n\n${USAGE}\n`);
    return EXIT_CONFIG;
  }
  if (positionals.length > 0) {
    process.stderr.write(`svcdns: unknown command "${positionals[0]}"\n\n${USAGE}\n`);
    return EXIT_CONFIG;
  }

  const file = values.config ?? 'config/svcdns.yaml';
  let config;
  try {
    const located = loadConfigLocated(file, overrides);
    config = located.config;
    // A backend setting that can never work (an address that does not parse, no Kubernetes API source) would
    // answer SERVFAIL for ever: refuse to start. Problems a running backend can outlive (a services file that
    // does not exist yet) are left to it: it logs them and keeps watching.
    const permanent = (await checkConfig(config, { file, lineOf: located.lineOf, env, full: false })).filter((p) => p.permanent);
    if (permanent.length > 0) {
      process.stderr.write(`svcdns: bad config\n${permanent.map((p) => p.message).join('\n')}\n`);
      return EXIT_CONFIG;
    }
  } catch (err) {
    process.stderr.write(`svcdns: bad config\n${(err as Error).message}\n`);
    return err instanceof ConfigError ? EXIT_CONFIG : EXIT_RUNTIME;
  }
  const logger = createLogger(config.log.level as LogLevel);
  const missingFlags = missingServerFlags(process.execArgv, process.env.NODE_OPTIONS);
  if (missingFlags.length > 0) {
    logger.info({ event: 'node_flags_missing', missing: missingFlags, want: SERVER_NODE_FLAGS },
      'started without the Node flags the launchers pass: expect up to ~100 MB more RSS (README "Memory")');
  }
  // glibc's arenas: Linux only (elsewhere the variable means nothing).
  const missingEnv = process.platform === 'linux' ? missingServerEnv(process.env) : [];
  if (missingEnv.length > 0) {
    logger.info({ event: 'node_env_missing', missing: missingEnv, want: SERVER_ENV },
      'started without the environment the launchers set: expect ~5-10 MB more RSS (README "Memory")');
  }
  // From here on a signal must not take its default action (kill): sockets may already answer while startApp
  // runs. Signals received while starting are held and handled once it has started (see `let stopping`).
  const heldSignals: string[] = [];
  const holdSignal = (signal: string) => heldSignals.push(signal);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, holdSignal);
  // Written once signals are held, so a signal sent to the pid it names is never the default kill.
  const pidFile = values['pid-file'];
  if (pidFile !== undefined) {
    const pid = String(process.pid);
    try {
      writeFileSync(pidFile, `${pid}\n`);
    } catch (err) {
      for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.off(sig, holdSignal);
      process.stderr.write(`svcdns: --pid-file: ${pidFile}: cannot write (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})\n`);
      return EXIT_RUNTIME;
    }
    // Removed at exit, unless another process has since written its own pid there.
    process.once('exit', () => {
      try {
        if (readFileSync(pidFile, 'utf8').trim() === pid) rmSync(pidFile, { force: true });
      } catch {
        // already gone
      }
    });
  }
  let app;
  try {
    app = await startApp({ config, configPath: file, logger, env, serveAdmin: true });
  } catch (err) {
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.off(sig, holdSignal);
    logger.fatal({ event: 'start_failed', err: (err as Error).message, code: (err as NodeJS.ErrnoException).code }, 'cannot start');
    return EXIT_RUNTIME;
  }
  const running = app;
  // SIGHUP or a config-file change: re-read the file with the same overrides; a bad file keeps the running config.
  let watcher: ConfigWatcher | null = null;
  const reload = (trigger: string) => {
    let next;
    try {
      next = loadConfigFile(file, overrides);
    } catch (err) {
      running.metrics.configReload(false);
      logger.error({ event: 'config_reload_rejected', trigger, code: (err as ConfigError).code, err: (err as Error).message }, 'new config rejected; keeping the running one');
      return;
    }
    running.reload(next).then(
      () => setWatch(running.config.watchConfig),
      (err: unknown) => logger.error({ event: 'config_reload_failed', trigger, code: (err as ConfigError).code, err: (err as Error).message }, 'reload failed; keeping the running config'),
    );
  };
  const setWatch = (on: boolean) => {
    if (on && !watcher) {
      watcher = watchConfigFile(file, () => reload('file-change'), (err) => logger.warn({ event: 'config_watch_error', err: err.message }, 'cannot watch the config file'));
    } else if (!on && watcher) {
      watcher.close();
      watcher = null;
    }
  };
  setWatch(config.watchConfig);
  let stopping = false;
  // Stays installed while draining: SIGHUP's default action would kill the process mid-drain.
  process.on('SIGHUP', () => {
    if (!stopping) reload('SIGHUP');
  });
  return new Promise<number>((resolveExit) => {
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal: the operator does not want to wait for the drain.
        logger.warn({ event: 'shutdown_forced', signal }, 'second signal; exiting now');
        resolveExit(EXIT_RUNTIME);
        return;
      }
      stopping = true;
      // Lameduck first (/readyz 503, DNS still answering), then the drain; the reload in effect decides its length.
      const lameDuckMs = running.config.shutdown.lameDuckMs;
      logger.info({ event: 'shutdown', signal, lameDuckMs }, 'shutting down');
      setWatch(false);
      const force = setTimeout(() => resolveExit(EXIT_RUNTIME), lameDuckMs + SHUTDOWN_GRACE_MS + 1000);
      force.unref();
      const t0 = performance.now();
      running.stop(SHUTDOWN_GRACE_MS, lameDuckMs).then(
        () => {
          logger.info({ event: 'stopped', ms: Math.round(performance.now() - t0) }, 'stopped');
          resolveExit(EXIT_OK);
        },
        (err: unknown) => {
          logger.error({ event: 'stop_failed', err: (err as Error).message }, 'stop failed');
          resolveExit(EXIT_RUNTIME);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.off(sig, holdSignal);
    for (const sig of heldSignals) {
      if (sig === 'SIGHUP') reload('SIGHUP');
      else stop(sig);
    }
  });
}

/** `svcdns check-config --services FILE`: a services file on its own, as the file backend would load it. */
function checkServicesFile(file: string): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`${file}: cannot read the file (${e.code ?? e.message})\n`);
    return EXIT_CONFIG;
  }
  const problems = checkServicesText(text, file);
  if (problems.length > 0) {
    process.stderr.write(`${problems.map((p) => p.message).join('\n')}\n`);
    return EXIT_CONFIG;
  }
  process.stdout.write(`${file}: OK\n`);
  return EXIT_OK;
}

// `import.meta.main` is missing before Node 24.2: fall back to comparing the script path, or `node dist/cli.js`
// would exit 0 without doing anything.
function runAsScript(): boolean {
  if (import.meta.main !== undefined) return import.meta.main;
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === import.meta.filename;
  } catch {
    return false;
  }
}
if (runAsScript()) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}

// config/check: the checks startup makes on a validated config beyond its schema — each backend's own (addresses,
// API sources, the files it reads) — as messages in the config's own `file:line: key.path: value: rule` form.
// `svcdns check-config` runs all of them; startup runs the permanent ones and exits 2 on any (cli.ts).

import { dirname, resolve } from 'node:path';
import type { BackendProblem } from '../backends/backend.ts';
import { servicesFileProblems } from '../backends/file/index.ts';
import { backendModules, type AnyBackendConfig, type BackendModule } from '../backends/registry.ts';
import { formatPath, type LineOf } from './load.ts';
import type { Config } from './schema.ts';

/** One problem, ready to print. `code` is stable (BackendErrorCode); tests assert it. */
export interface ConfigProblem {
  readonly code: string;
  /** `svcdns.yaml:7: backends[0].address: "http://127.0.0.1:notaport": must be ...` */
  readonly message: string;
  /** Startup exits 2 on it (see BackendProblem.permanent). */
  readonly permanent: boolean;
}

export interface CheckOptions {
  /** The config file, as named in messages; relative backend paths resolve against its directory. */
  readonly file: string;
  readonly lineOf?: LineOf | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** false: only the permanent checks, without I/O (startup); true: everything (check-config). */
  readonly full: boolean;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Run every backend's check. The problems about the config file come in line order (as ConfigError's do), then
 * those located in the files a backend reads (a services file: `services.yaml:3: ...`), in the order found.
 */
export async function checkConfig(config: Config, opts: CheckOptions): Promise<ConfigProblem[]> {
  const configDir = dirname(resolve(opts.file));
  const out: { problem: ConfigProblem; line: number }[] = [];
  const elsewhere: ConfigProblem[] = [];
  for (const [i, bc] of config.backends.entries()) {
    const mod = backendModules[bc.type] as BackendModule<AnyBackendConfig>;
    const { check } = await mod.load();
    const problems: BackendProblem[] = await check(bc, { configDir, env: opts.env, full: opts.full });
    for (const p of problems) {
      if (p.located) {
        elsewhere.push({ code: p.code, message: p.message, permanent: p.permanent });
        continue;
      }
      const path: PropertyKey[] = p.key === undefined ? ['backends', i] : ['backends', i, p.key];
      const line = opts.lineOf?.(path);
      const value = p.key === undefined ? '' : `${show((bc as Record<string, unknown>)[p.key])}: `;
      const message = `${opts.file}${line ? `:${line}` : ''}: ${formatPath(path)}: ${value}${p.message}`;
      out.push({ problem: { code: p.code, message, permanent: p.permanent }, line: line ?? Number.MAX_SAFE_INTEGER });
    }
  }
  // Array.prototype.sort is stable: problems on one line keep the order the checks found them in.
  return [...out.sort((a, b) => a.line - b.line).map((x) => x.problem), ...elsewhere];
}

/**
 * `svcdns check-config --services FILE`: the problems of a services file on its own (text already read), as the
 * file backend would find them on load. Scope "default" stands for the backend's `defaultScope`.
 */
export function checkServicesText(text: string, file: string): ConfigProblem[] {
  return servicesFileProblems(text, file, 'default').map((p) => ({ code: p.code, message: p.message, permanent: p.permanent }));
}

// backends/registry: the one table of backend types — config schema and factory per `type`.
// Only config/ (for the schema) and app.ts (for the factory) import it.
//
// Schemas are imported eagerly (config validation needs every type); implementations are loaded on first use,
// so a server without a Kubernetes backend never loads @kubernetes/client-node (~85 MB of RSS when imported).

import type { z } from 'zod';
import type { Backend, BackendCheckContext, BackendContext, BackendProblem } from './backend.ts';
import * as file from './file/index.ts';
import * as consulConfig from './consul/config.ts';
import * as kubernetesConfig from './kubernetes/config.ts';

export interface BackendModule<C extends { type: string; name?: string | undefined }> {
  /** Strict zod schema of this backend's entry in `backends:`; `type` is a literal. */
  readonly configSchema: z.ZodType<C>;
  /** The implementation, imported when a backend of this type is first created or checked. */
  readonly load: () => Promise<{
    readonly create: (config: C, ctx: BackendContext) => Backend;
    /** The checks startup makes, without starting anything (check-config; startup: `full: false`). Never throws. */
    readonly check: (config: C, ctx: BackendCheckContext) => Promise<BackendProblem[]>;
  }>;
}

export const backendModules = {
  file: { configSchema: file.configSchema, load: async () => file } as BackendModule<file.FileBackendConfig>,
  consul: { configSchema: consulConfig.configSchema, load: () => import('./consul/index.ts') } as BackendModule<consulConfig.ConsulBackendConfig>,
  kubernetes: {
    configSchema: kubernetesConfig.configSchema,
    load: () => import('./kubernetes/index.ts'),
  } as BackendModule<kubernetesConfig.KubernetesBackendConfig>,
} as const;

export type BackendType = keyof typeof backendModules;

/** The config entry of any registered backend type. */
export type AnyBackendConfig = {
  [K in BackendType]: (typeof backendModules)[K] extends BackendModule<infer C> ? C : never;
}[BackendType];

// backends/registry: the one table of backend types — config schema and factory per `type`.
// Only config/ (for the schema) and app.ts (for the factory) import it.

import type { z } from 'zod';
import type { Backend, BackendContext } from './backend.ts';
import * as file from './file/index.ts';
import * as consul from './consul/index.ts';
import * as kubernetes from './kubernetes/index.ts';

export interface BackendModule<C extends { type: string; name?: string | undefined }> {
  /** Strict zod schema of this backend's entry in `backends:`; `type` is a literal. */
  readonly configSchema: z.ZodType<C>;
  readonly create: (config: C, ctx: BackendContext) => Backend;
}

export const backendModules = {
  file: file as BackendModule<file.FileBackendConfig>,
  consul: consul as BackendModule<consul.ConsulBackendConfig>,
  kubernetes: kubernetes as BackendModule<kubernetes.KubernetesBackendConfig>,
} as const;

export type BackendType = keyof typeof backendModules;

/** The config entry of any registered backend type. */
export type AnyBackendConfig = {
  [K in BackendType]: (typeof backendModules)[K] extends BackendModule<infer C> ? C : never;
}[BackendType];

// backends/kubernetes/config: the strict schema of a `type: kubernetes` entry in `backends:`.

import { z } from 'zod';
import { backendNameSchema } from '../schema.ts';

/** Shortest periodic relist we accept (ms): a relist is a full LIST on the API server, so never a hot loop. */
export const MIN_RESYNC_MS = 10_000;

/**
 * A namespace name as Kubernetes allows it (RFC 1123 label: lowercase letters, digits and "-", a letter or digit at
 * each end, at most 63 characters). Matching ignores case, so "Prod" means "prod"; "Default_NS" could never
 * exist, and watching it would answer SERVFAIL for ever.
 */
const namespaceSchema = z
  .string()
  .transform((s) => s.toLowerCase())
  .refine((s) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(s), {
    message: 'must be a Kubernetes namespace name (RFC 1123: letters, digits and "-", a letter or digit at each end, at most 63 characters)',
  });

export const configSchema = z
  .strictObject({
    type: z.literal('kubernetes'),
    name: backendNameSchema,
    /** `endpointslices` (discovery.k8s.io/v1, default) or `endpoints` (legacy core/v1, for old clusters). */
    api: z.enum(['endpointslices', 'endpoints']).default('endpointslices'),
    /** Kubeconfig file (relative to the config file's directory). Else $KUBECONFIG, else in-cluster. */
    kubeconfig: z.string().min(1).optional(),
    /** Context inside the kubeconfig; default: its current-context. */
    context: z.string().min(1).optional(),
    /** Namespaces (= scopes) to watch; empty or absent: every namespace (one cluster-wide watch). */
    namespaces: z.array(namespaceSchema).default([]),
    /** Namespace whose services also answer unscoped names (`N.service.D`, §2.1). */
    defaultScope: namespaceSchema.optional(),
    /** Kubernetes label selector on the watched objects (EndpointSlices/Endpoints carry their Service's labels). */
    labelSelector: z.string().min(1).optional(),
    /** Periodic full relist in ms (heals a watch that silently missed events); 0 = never (default). */
    resyncMs: z
      .number()
      .int()
      .refine((n) => n === 0 || n >= MIN_RESYNC_MS, { message: `must be 0 (off) or at least ${MIN_RESYNC_MS}` })
      .default(0),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.defaultScope !== undefined && cfg.namespaces.length > 0 && !cfg.namespaces.includes(cfg.defaultScope)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultScope'],
        message: `namespace "${cfg.defaultScope}" is not in namespaces [${cfg.namespaces.join(', ')}]`,
      });
    }
    if (new Set(cfg.namespaces).size !== cfg.namespaces.length) {
      ctx.addIssue({ code: 'custom', path: ['namespaces'], message: 'must not repeat a namespace' });
    }
  });

export type KubernetesBackendConfig = z.output<typeof configSchema>;

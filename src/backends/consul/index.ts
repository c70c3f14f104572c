// backends/consul: the `type: consul` backend — watches the Consul catalog (/v1/catalog/services) and each
// service's health (/v1/health/service/<name>) with blocking queries, per datacenter; config in config.ts;
// readiness: SERVFAIL until the first full sync of every datacenter, then last known data while Consul fails.

import type { Backend, BackendContext } from '../backend.ts';
import type { ConsulBackendConfig } from './config.ts';
import { ConsulBackend } from './consul.ts';

export { configSchema } from './config.ts';
export type { ConsulBackendConfig } from './config.ts';

export function create(config: ConsulBackendConfig, ctx: BackendContext): Backend {
  return new ConsulBackend(config, ctx);
}

// backends/kubernetes/errors: client-node failures (ApiException, watch status errors, fetch errors) → BackendError.

import { BackendError } from '../backend.ts';
import type { ApiResource } from './rbac.ts';
import { grantHint } from './rbac.ts';

export type Verb = 'list' | 'watch';

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT',
]);

/** HTTP status of a client-node error: ApiException has numeric `code`, Watch errors `statusCode`. */
export function httpStatus(err: unknown): number | undefined {
  // DOMException (TimeoutError, AbortError) has a numeric legacy `code` that is not an HTTP status.
  if (typeof err !== 'object' || err === null || err instanceof DOMException) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.statusCode === 'number') return e.statusCode;
  if (typeof e.code === 'number' && e.code >= 100 && e.code <= 599) return e.code;
  return undefined;
}

/** The API server's Status message, when the body carries one. */
function statusMessage(err: unknown): string | undefined {
  let body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    const text: string = body;
    try { body = JSON.parse(text); } catch { return text === '' ? undefined : text; }
  }
  const m = (body as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' ? m : undefined;
}

/** TLS verification failures: a wrong CA or server name is configuration, not an outage. */
const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME_MISMATCH/;

function causeCode(err: unknown, test: (code: string) => boolean): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && test(code)) return code;
  }
  return undefined;
}

function networkCode(err: unknown): string | undefined {
  return causeCode(err, (c) => NETWORK_CODES.has(c));
}

/** Map a failed LIST or WATCH of `r` (cluster-wide when namespace is null) to a typed error. */
export function toBackendError(err: unknown, verb: Verb, r: ApiResource, namespace: string | null): BackendError {
  if (err instanceof BackendError) return err;
  const where = namespace === null ? 'at the cluster scope' : `in the namespace "${namespace}"`;
  const group = r.group === '' ? '""' : `"${r.group}"`;
  const details = { verb, group: r.group, resource: r.resource, namespace };
  const status = httpStatus(err);
  if (status === 403) {
    return new BackendError(
      'SVCDNS_BACKEND_FORBIDDEN',
      `forbidden: cannot ${verb} resource "${r.resource}" in API group ${group} ${where} — ${grantHint(r)}`,
      { ...details, status, server: statusMessage(err) },
      err,
    );
  }
  if (status === 401) {
    return new BackendError(
      'SVCDNS_BACKEND_FORBIDDEN',
      `unauthorized: the API server rejected our credentials on ${verb} "${r.resource}" (check the token/kubeconfig user)`,
      { ...details, status },
      err,
    );
  }
  if (status !== undefined) {
    return new BackendError(
      'SVCDNS_BACKEND_HTTP',
      `${verb} ${r.resource} ${where}: HTTP ${status}${statusMessage(err) ? `: ${statusMessage(err)}` : ''}`,
      { ...details, status },
      err,
    );
  }
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError') {
    return new BackendError('SVCDNS_BACKEND_TIMEOUT', `${verb} ${r.resource}: request timed out`, details, err);
  }
  const tls = causeCode(err, (c) => TLS_CODE.test(c));
  if (tls !== undefined) {
    return new BackendError(
      'SVCDNS_BACKEND_CONFIG',
      `${verb} ${r.resource}: the API server's TLS certificate is not trusted (${tls}): check the CA (certificate-authority / ca.crt)`,
      { ...details, errno: tls },
      err,
    );
  }
  const net = networkCode(err);
  if (net !== undefined || (err instanceof TypeError && /fetch failed/.test(err.message))) {
    return new BackendError(
      'SVCDNS_BACKEND_UNREACHABLE',
      `${verb} ${r.resource}: API server unreachable (${net ?? (err as Error).message})`,
      { ...details, errno: net },
      err,
    );
  }
  const text = (err as Error)?.message ?? String(err);
  const fsCode = (err as { code?: unknown } | null)?.code;
  if (fsCode === 'ENOENT' || fsCode === 'EACCES' || /skipTLSVerify|certificate|tls|auth provider|exec plugin|No currently active cluster/i.test(text)) {
    // client-node refuses before sending anything: TLS settings, credentials files, auth plugins.
    return new BackendError('SVCDNS_BACKEND_CONFIG', `${verb} ${r.resource}: client configuration: ${text}`, details, err);
  }
  return new BackendError('SVCDNS_BACKEND_BAD_DATA', `${verb} ${r.resource}: ${(err as Error)?.message ?? String(err)}`, details, err);
}

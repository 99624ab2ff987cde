import type { DeliveryCommand } from '@bus/connectors';
import { z } from 'zod';
import { type CallOptions, type Target, TargetReadError, type TargetRecord } from '../target.js';
import { HttpListRoute, httpList } from './http-list.js';
import { sendHttp, urlFromEnv } from './send.js';

const EnvName = z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'must name an environment variable');
const Route = z.object({ method: z.enum(['POST', 'PUT', 'PATCH', 'DELETE']), path: z.string().startsWith('/') });

/**
 * Scopes the target's calls need: a token granted without one of them is not used (checked when deliver starts and after
 * every refresh; /readyz names connector and scope) instead of being found out by a 403 that pauses the connector.
 */
const RequiredScopes = z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be one OAuth2 scope token (no spaces)')).optional();

/** Target auth; OAuth2's requestTimeoutMs: how long a token request may take (default 30 000 ms; a timed-out refresh is in doubt). */
export const HttpAuth = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }),
  z.object({ kind: z.literal('api-key'), header: z.string().min(1), env: EnvName }),
  z.object({ kind: z.literal('basic'), userEnv: EnvName, passwordEnv: EnvName }),
  z.object({ kind: z.literal('oauth2-client-credentials'), tokenUrlEnv: EnvName, clientIdEnv: EnvName, clientSecretEnv: EnvName,
    scope: z.string().optional(), skewSec: z.number().int().min(0).optional(), requestTimeoutMs: z.number().int().min(1_000).max(300_000).optional(), requiredScopes: RequiredScopes }),
  z.object({ kind: z.literal('oauth2-refresh-token'), tokenUrlEnv: EnvName, clientIdEnv: EnvName, clientSecretEnv: EnvName,
    refreshTokenEnv: EnvName, skewSec: z.number().int().min(0).optional(), requestTimeoutMs: z.number().int().min(1_000).max(300_000).optional(), requiredScopes: RequiredScopes }),
]);
export type HttpAuth = z.infer<typeof HttpAuth>;

/** An HTTP/REST target as data in the connector's `delivery` settings. */
export const HttpTargetSettings = z.object({
  kind: z.literal('http'),
  /** Environment variable with the target's base URL. */
  baseUrlEnv: EnvName,
  /** Method and path per command action; `{type}` and `{id}` are the target key. */
  routes: z.record(z.string(), Route).refine((r) => Object.keys(r).length > 0, 'must map at least one action'),
  idempotencyHeader: z.string().default('Idempotency-Key'),
  auth: HttpAuth.default({ kind: 'none' }),
  /**
   * How to read one record back (GET path; 404 = absent), used after an ambiguous attempt:
   * when the record already has this command's version, the attempt had landed.
   */
  lookup: z.object({
    path: z.string().startsWith('/'),
    /** Dotted path of the record's version in the answer. Default `version`. */
    versionField: z.string().default('version'),
    /** Dotted path of the record's fields in the answer; default the whole answer. */
    fieldsField: z.string().optional(),
  }).optional(),
  /** How to page through every record of a type (keyset or cursor), so reconcile finds records unknown to the source. */
  list: HttpListRoute.optional(),
});
export type HttpTargetSettings = z.infer<typeof HttpTargetSettings>;

const at = (value: unknown, path: string | undefined): unknown =>
  path === undefined ? value : path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), value);
const fill = (path: string, key: { type: string; id: string }) => path.replaceAll('{type}', encodeURIComponent(key.type)).replaceAll('{id}', encodeURIComponent(key.id));

/** Static auth headers (API key, basic); OAuth2 bearer tokens are added per call by deliver. */
function staticAuthHeaders(auth: HttpAuth, env: NodeJS.ProcessEnv, missing: (what: string) => Error): Record<string, string> {
  if (auth.kind === 'api-key') {
    const key = env[auth.env];
    if (!key) throw missing(auth.env);
    return { [auth.header]: key };
  }
  if (auth.kind === 'basic') {
    const user = env[auth.userEnv];
    const pass = env[auth.passwordEnv];
    if (!user || !pass) throw missing(`${auth.userEnv} and ${auth.passwordEnv}`);
    return { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
  }
  if (auth.kind === 'oauth2-client-credentials' || auth.kind === 'oauth2-refresh-token') {
    for (const v of [auth.tokenUrlEnv, auth.clientIdEnv, auth.clientSecretEnv, ...(auth.kind === 'oauth2-refresh-token' ? [auth.refreshTokenEnv] : [])]) if (!env[v]) throw missing(v);
  }
  return {};
}

/**
 * HTTP/REST: the route of the command's action, a JSON body `{key, version, fields,
 * sourceOwned, eventId}`, the idempotency key in the connector's header (the same on every
 * attempt), the entity version in `x-entity-version`, auth, and a hard timeout.
 */
export function createHttpTarget(s: HttpTargetSettings, env: NodeJS.ProcessEnv, missing: (what: string) => Error, fetchFn: typeof fetch = fetch): Target {
  const baseUrl = urlFromEnv(env, s.baseUrlEnv, missing);
  const authHeaders = staticAuthHeaders(s.auth, env, missing);
  const lookupRoute = s.lookup;
  return {
    kind: 'http',
    ...(s.list ? { list: httpList(s.list, { baseUrl, headers: authHeaders, fetchFn }) } : {}),
    async apply(cmd: DeliveryCommand, o: CallOptions) {
      const route = s.routes[cmd.action];
      if (!route) return { ok: false, failureClass: 'permanent', detail: `the connector has no route for action "${cmd.action}"`, durationMs: 0 };
      return sendHttp({
        url: `${baseUrl}${fill(route.path, cmd.target)}`,
        method: route.method,
        headers: {
          'content-type': 'application/json', [s.idempotencyHeader]: cmd.idempotencyKey,
          'x-correlation-id': cmd.correlationId, 'x-entity-version': String(cmd.version), ...authHeaders, ...o.headers,
        },
        body: route.method === 'DELETE' ? undefined : JSON.stringify({ key: cmd.target, version: cmd.version, fields: cmd.fields, sourceOwned: cmd.sourceOwned, eventId: cmd.event.id }),
      }, o.timeoutMs, fetchFn);
    },
    lookup: lookupRoute && (async (key, o): Promise<TargetRecord | undefined> => {
      const r = await sendHttp({ url: `${baseUrl}${fill(lookupRoute.path, key)}`, method: 'GET', headers: { accept: 'application/json', ...authHeaders, ...o.headers } }, o.timeoutMs, fetchFn);
      if (r.status === 404) return undefined;
      if (!r.ok) throw new TargetReadError(r.failureClass === 'ok' ? 'transient' : r.failureClass, `lookup of ${key.type} ${key.id}: ${r.detail}`, r.status);
      let answer: unknown;
      try {
        answer = JSON.parse(r.body ?? '');
      } catch {
        throw new TargetReadError('permanent', `lookup of ${key.type} ${key.id}: the answer is not JSON; check the connector's lookup.path`);
      }
      const version = Number(at(answer, lookupRoute.versionField));
      const fields = at(answer, lookupRoute.fieldsField);
      if (!Number.isSafeInteger(version)) throw new TargetReadError('permanent', `lookup of ${key.type} ${key.id}: no whole number at "${lookupRoute.versionField}"; check the connector's lookup.versionField`);
      return { key, version, fields: fields && typeof fields === 'object' ? (fields as Record<string, unknown>) : {} };
    }),
  };
}

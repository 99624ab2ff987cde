import { ConfigError } from '@bus/errors';
import type { Connector } from '@bus/connectors';
import { defineRetryPolicy, mergeRetryPolicy, type RetryPolicy, type RetryPolicyInput } from '@bus/retry';
import { z } from 'zod';

const Route = z.object({ method: z.enum(['POST', 'PUT', 'PATCH', 'DELETE']), path: z.string().startsWith('/') });

/** An HTTP/REST target as data in the connector's `delivery` settings. */
export const HttpDelivery = z.object({
  kind: z.literal('http'),
  /** Environment variable with the target's base URL. */
  baseUrlEnv: z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'must name an environment variable'),
  /** Method and path per command action; `{type}` and `{id}` are the target key. */
  routes: z.record(z.string(), Route).refine((r) => Object.keys(r).length > 0, 'must map at least one action'),
  idempotencyHeader: z.string().default('Idempotency-Key'),
  auth: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('none') }),
    z.object({ kind: z.literal('api-key'), header: z.string().min(1), env: z.string().regex(/^[A-Z][A-Z0-9_]*$/) }),
    z.object({ kind: z.literal('basic'), userEnv: z.string(), passwordEnv: z.string() }),
    z.object({ kind: z.literal('oauth2-client-credentials'), tokenUrlEnv: z.string(), clientIdEnv: z.string(), clientSecretEnv: z.string(),
      scope: z.string().optional(), skewSec: z.number().int().min(0).optional() }),
    z.object({ kind: z.literal('oauth2-refresh-token'), tokenUrlEnv: z.string(), clientIdEnv: z.string(), clientSecretEnv: z.string(),
      refreshTokenEnv: z.string(), skewSec: z.number().int().min(0).optional() }),
  ]).default({ kind: 'none' }),
  retry: z.custom<RetryPolicyInput>().optional(),
  retryByType: z.record(z.string(), z.custom<RetryPolicyInput>()).optional(),
  rateLimit: z.object({ ratePerSec: z.number().positive(), burst: z.number().min(1).optional() }).optional(),
  breaker: z.object({ failureThreshold: z.number().int().min(1).optional(), openMs: z.number().int().min(1).optional() }).optional(),
  ordering: z.enum(['strict', 'latest', 'none']).default('strict'),
  /** How long a strict gap is waited for. Default 60 000 ms. */
  gapWaitMs: z.number().int().min(0).default(60_000),
});
export type HttpDelivery = z.infer<typeof HttpDelivery>;

export interface ResolvedDelivery {
  connector: Connector;
  /** The environment the connector's secrets are read from (OAuth2 credentials are read when deliver starts). */
  env: NodeJS.ProcessEnv;
  settings: HttpDelivery;
  baseUrl: string;
  authHeaders: Record<string, string>;
  policyFor(type: string): RetryPolicy;
}

/** Validates a connector's delivery settings against the environment; every problem named, at start-up. */
export function resolveDelivery(connector: Connector, env: NodeJS.ProcessEnv): ResolvedDelivery {
  const parsed = HttpDelivery.safeParse(connector.delivery ?? {});
  const where = `connector "${connector.name}" delivery`;
  if (!parsed.success) {
    throw new ConfigError(`${where} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const s = parsed.data;
  const missing = (name: string) => new ConfigError(`${where}: set ${name} (README → Connectors)`);
  const baseUrl = env[s.baseUrlEnv];
  if (!baseUrl || !URL.canParse(baseUrl)) throw missing(`${s.baseUrlEnv} to the target's base URL`);
  let authHeaders: Record<string, string> = {};
  if (s.auth.kind === 'api-key') {
    const key = env[s.auth.env];
    if (!key) throw missing(s.auth.env);
    authHeaders = { [s.auth.header]: key };
  } else if (s.auth.kind === 'basic') {
    const user = env[s.auth.userEnv];
    const pass = env[s.auth.passwordEnv];
    if (!user || !pass) throw missing(`${s.auth.userEnv} and ${s.auth.passwordEnv}`);
    authHeaders = { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
  }
  const base = defineRetryPolicy(s.retry ?? {}, `${where}.retry`);
  const byType = new Map(Object.entries(s.retryByType ?? {}).map(([t, p]) => [t, mergeRetryPolicy(base, p, `${where}.retryByType.${t}`)]));
  if (s.auth.kind === 'oauth2-client-credentials' || s.auth.kind === 'oauth2-refresh-token') {
    const a = s.auth;
    for (const v of [a.tokenUrlEnv, a.clientIdEnv, a.clientSecretEnv, ...(a.kind === 'oauth2-refresh-token' ? [a.refreshTokenEnv] : [])]) if (!env[v]) throw missing(v);
  }
  return { connector, env, settings: s, baseUrl: baseUrl.replace(/\/$/, ''), authHeaders, policyFor: (type) => byType.get(type) ?? base };
}

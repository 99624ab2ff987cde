import { ConfigError } from '@bus/errors';
import type { Connector } from '@bus/connectors';
import { defineRetryPolicy, mergeRetryPolicy, type RetryPolicy, type RetryPolicyInput } from '@bus/retry';
import { z } from 'zod';
import type { Target } from './target.js';
import { createHttpTarget, HttpTargetSettings } from './targets/http.js';
import { createPostgresTarget, PostgresTargetSettings } from './targets/postgres.js';
import { createWebhookTarget, WebhookTargetSettings } from './targets/webhook.js';

/** How deliver treats a connector, whatever its target: retries, pace, breaker, ordering. */
const Common = {
  retry: z.custom<RetryPolicyInput>().optional(),
  retryByType: z.record(z.string(), z.custom<RetryPolicyInput>()).optional(),
  rateLimit: z.object({ ratePerSec: z.number().positive(), burst: z.number().min(1).optional() }).optional(),
  breaker: z.object({ failureThreshold: z.number().int().min(1).optional(), openMs: z.number().int().min(1).optional() }).optional(),
  ordering: z.enum(['strict', 'latest', 'none']).default('strict'),
  /**
   * Strict, sequence versions: how long a missing version is waited for once it is neither pending nor in
   * flight in DELIVERIES and transform has passed everything stored before the gap was seen. Time paused,
   * held off by an open circuit or queued behind a backlog does not count. Default 60 000 ms.
   */
  gapWaitMs: z.number().int().min(0).default(60_000),
  /** Strict, stamp versions (timestamps): how long a command is held after it was stored for older ones to arrive. Default 2 000 ms. */
  reorderWindowMs: z.number().int().min(0).default(2_000),
  /**
   * Commands whose mapping says they need other records first (`needs`): how long one waits for them to be applied at
   * this target before it is dead-lettered naming the missing one. Time paused, with the circuit open or behind a
   * backlog does not count (like gapWaitMs). Set it on a connector whose
   * mappings use `needs`: its deliveries then also replay the commands dead-lettered waiting for them. Default 60 000 ms.
   */
  dependencies: z.object({ waitMs: z.number().int().min(0).max(86_400_000).default(60_000) }).optional(),
};

/** A connector's `delivery` settings: the target kind's own fields plus the common ones. */
export const DeliverySettings = z.discriminatedUnion('kind', [
  HttpTargetSettings.extend(Common),
  WebhookTargetSettings.extend(Common),
  PostgresTargetSettings.extend(Common),
]);
export type DeliverySettings = z.infer<typeof DeliverySettings>;
/** Kept for the HTTP connector's users: its settings with the common ones. */
export const HttpDelivery = HttpTargetSettings.extend(Common);
export type HttpDelivery = z.infer<typeof HttpDelivery>;

type Missing = (what: string) => Error;
/** One factory per target kind; a new kind adds its settings above and its factory here. */
const targetFactories: { [K in DeliverySettings['kind']]: (s: Extract<DeliverySettings, { kind: K }>, env: NodeJS.ProcessEnv, missing: Missing, fetchFn?: typeof fetch) => Target } = {
  http: createHttpTarget,
  webhook: createWebhookTarget,
  postgres: createPostgresTarget,
};

export interface ResolvedDelivery {
  connector: Connector;
  /** The environment the connector's secrets are read from (OAuth2 credentials are read when deliver starts). */
  env: NodeJS.ProcessEnv;
  settings: DeliverySettings;
  target: Target;
  policyFor(type: string): RetryPolicy;
}

/** Validates a connector's delivery settings against the environment and builds its target; every problem named, at start-up. */
export function resolveDelivery(connector: Connector, env: NodeJS.ProcessEnv, opts: { fetchFn?: typeof fetch } = {}): ResolvedDelivery {
  const where = `connector "${connector.name}" delivery`;
  const parsed = DeliverySettings.safeParse(connector.delivery ?? {});
  if (!parsed.success) {
    throw new ConfigError(`${where} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'kind'}: ${i.message}`).join('; ')}`);
  }
  const s = parsed.data;
  const missing: Missing = (name) => new ConfigError(`${where}: set ${name} (README → Connectors)`);
  const target = (targetFactories[s.kind] as (s: DeliverySettings, env: NodeJS.ProcessEnv, missing: Missing, fetchFn?: typeof fetch) => Target)(s, env, missing, opts.fetchFn);
  const base = defineRetryPolicy(s.retry ?? {}, `${where}.retry`);
  const byType = new Map(Object.entries(s.retryByType ?? {}).map(([t, p]) => [t, mergeRetryPolicy(base, p, `${where}.retryByType.${t}`)]));
  return { connector, env, settings: s, target, policyFor: (type) => byType.get(type) ?? base };
}

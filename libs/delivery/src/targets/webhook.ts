import { signStandardWebhook } from '@bus/webhooks';
import { z } from 'zod';
import type { Target } from '../target.js';
import { sendHttp, urlFromEnv } from './send.js';

const EnvName = z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'must name an environment variable');

/**
 * Outbound webhooks signed with Standard Webhooks (standardwebhooks.com): the receiver
 * verifies `webhook-signature` over `<webhook-id>.<webhook-timestamp>.<body>` with the
 * shared `whsec_` secret, and dedups by `webhook-id` — our idempotency key.
 */
export const WebhookTargetSettings = z.object({
  kind: z.literal('webhook'),
  /** Environment variable with the endpoint URL. */
  urlEnv: EnvName,
  /** Environment variable with the signing secret(s), `whsec_<base64>`; several separated by spaces while rotating. */
  secretEnv: EnvName,
});
export type WebhookTargetSettings = z.infer<typeof WebhookTargetSettings>;

/** Body: `{type, timestamp, data}` as the Standard Webhooks spec suggests; data carries the key, version and fields. */
export function createWebhookTarget(s: WebhookTargetSettings, env: NodeJS.ProcessEnv, missing: (what: string) => Error, fetchFn: typeof fetch = fetch): Target {
  const url = urlFromEnv(env, s.urlEnv, missing);
  const secrets = (env[s.secretEnv] ?? '').split(/\s+/).filter(Boolean);
  if (secrets.length === 0) throw missing(`${s.secretEnv} to the webhook signing secret (whsec_…)`);
  // checked now: a malformed secret names itself at start-up, not at the first event
  signStandardWebhook({ id: 'check', timestampSec: 0, body: '', secret: secrets });
  return {
    kind: 'webhook',
    async apply(cmd, o) {
      const timestamp = new Date();
      const body = JSON.stringify({
        type: `${cmd.target.type}.${cmd.action}`,
        timestamp: timestamp.toISOString(),
        data: { key: cmd.target, version: cmd.version, fields: cmd.fields, eventId: cmd.event.id, eventType: cmd.event.type, correlationId: cmd.correlationId },
      });
      // webhook-id is the idempotency key: the same on every attempt, so the receiver can dedup
      const signed = signStandardWebhook({ id: cmd.idempotencyKey, timestampSec: Math.floor(timestamp.getTime() / 1000), body, secret: secrets });
      return sendHttp({ url, method: 'POST', headers: { 'content-type': 'application/json', ...signed, ...o.headers }, body }, o.timeoutMs, fetchFn);
    },
  };
}

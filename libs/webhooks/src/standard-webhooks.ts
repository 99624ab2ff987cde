import { configError, type Settings } from './config.js';
import { decodeSignature, hmac, matchingKey, standardWebhooksKey } from './crypto.js';
import { checkTimestamp, header, reject } from './request.js';
import type { RequestHeaders, StandardWebhookHeaders, VerifyResult } from './types.js';

/**
 * The `v1` signatures of a `webhook-signature` header: space-separated `v1,<base64>` entries.
 * Other versions (`v1a` is asymmetric) are skipped; a trailing comma left by Node joining a
 * repeated header is ignored.
 */
function v1Signatures(value: string): Buffer[] {
  const signatures: Buffer[] = [];
  for (const entry of value.split(/\s+/)) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const decoded = decodeSignature(entry.slice(comma + 1).replace(/,$/, ''), 'base64');
    if (decoded) signatures.push(decoded);
  }
  return signatures;
}

/** Verifies Standard Webhooks: HMAC-SHA256 over `${id}.${timestamp}.${body}`; the id is the delivery id. */
export function standardWebhooksVerifier(s: Settings) {
  return (headers: RequestHeaders, body: Uint8Array): VerifyResult => {
    const id = header(headers, 'webhook-id');
    const timestampText = header(headers, 'webhook-timestamp');
    const signature = header(headers, 'webhook-signature');
    const missing = [!id && 'webhook-id', !timestampText && 'webhook-timestamp', !signature && 'webhook-signature'].filter(Boolean);
    if (!id || !timestampText || !signature) return reject('missing_header', `${missing.join(', ')} missing; Standard Webhooks needs all three`);
    const timestamp = checkTimestamp(timestampText, 'webhook-timestamp', s.nowMs(), s.toleranceSec);
    if (typeof timestamp !== 'number') return timestamp;
    const candidates = v1Signatures(signature);
    if (candidates.length === 0) return reject('malformed_header', 'webhook-signature has no v1,<base64> entry');
    // the signed content uses the header text as sent, not a re-formatted number
    const i = matchingKey('sha256', s.keys, [`${id}.${timestampText}.`, body], candidates);
    if (i < 0) {
      return reject('signature_mismatch',
        `none of ${candidates.length} v1 signature(s) matches any of ${s.keys.length} secret(s); is the body passed unchanged?`);
    }
    return { ok: true, deliveryId: id, timestamp, secretIndex: i };
  };
}

/** What {@link signStandardWebhook} signs. */
export interface StandardWebhookMessage {
  /**
   * Required: `whsec_<base64>`. Several during a rotation: the header then carries one
   * signature per secret, and a receiver holding either accepts it.
   */
  secret: string | readonly string[];
  /** Required: the message id, stable across retries of one message (receivers dedup on it). */
  id: string;
  /** Required: when this attempt is sent, unix seconds. Receivers refuse it outside their tolerance (5 min). */
  timestampSec: number;
  /** Required: the exact bytes that will be sent (a string is sent as UTF-8). */
  body: string | Uint8Array;
}

/**
 * Headers that sign an outbound webhook with Standard Webhooks, accepted by the
 * standardwebhooks and Svix libraries. Throws `WEBHOOK_CONFIG_INVALID` for a secret that is
 * not `whsec_<base64>`, an empty id or a timestamp that is not whole seconds.
 */
export function signStandardWebhook(message: StandardWebhookMessage): StandardWebhookHeaders {
  const secrets = typeof message.secret === 'string' ? [message.secret] : [...(message.secret ?? [])];
  const problems: string[] = [];
  if (secrets.length === 0) problems.push('secret: required, whsec_<base64>');
  const keys = secrets.map((secret, i) => {
    const key = typeof secret === 'string' ? standardWebhooksKey(secret) : undefined;
    const field = secrets.length === 1 && typeof message.secret === 'string' ? 'secret' : `secret[${i}]`;
    if (!key) problems.push(`${field}: must be whsec_<base64> (the part after whsec_ is not base64)`);
    return key;
  });
  if (typeof message.id !== 'string' || message.id === '' || /\s/.test(message.id)) problems.push('id: required, a message id without spaces');
  if (!Number.isSafeInteger(message.timestampSec) || message.timestampSec < 0) problems.push('timestampSec: must be whole unix seconds');
  if (problems.length > 0) throw configError('signStandardWebhook input', problems);
  const content = [`${message.id}.${message.timestampSec}.`, message.body];
  const signatures = keys.map((key) => `v1,${hmac('sha256', key!, content).toString('base64')}`);
  return {
    'webhook-id': message.id,
    'webhook-timestamp': String(message.timestampSec),
    'webhook-signature': signatures.join(' '),
  };
}

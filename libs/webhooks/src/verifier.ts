import { type HmacSettings, parseConfig } from './config.js';
import { githubVerifier } from './github.js';
import { hmacVerifier } from './hmac.js';
import { assertRawBody } from './request.js';
import { standardWebhooksVerifier } from './standard-webhooks.js';
import { stripeVerifier } from './stripe.js';
import type { RequestHeaders, Verifier, VerifierConfig, VerifyResult } from './types.js';

/**
 * A verifier for one source. The configuration is checked here: a bad one throws
 * `WEBHOOK_CONFIG_INVALID` (permanent) naming every wrong field, so a service fails at
 * start-up, not on its first request. `verify` then checks the raw body bytes against every
 * configured secret in constant time and answers with a result, never an exception.
 */
export function createVerifier(config: VerifierConfig): Verifier {
  const settings = parseConfig(config);
  let check: (headers: RequestHeaders, body: Uint8Array) => VerifyResult;
  if (settings.scheme === 'standard-webhooks') check = standardWebhooksVerifier(settings);
  else if (settings.scheme === 'stripe') check = stripeVerifier(settings);
  else if (settings.scheme === 'github') check = githubVerifier(settings);
  else check = hmacVerifier(settings as HmacSettings);
  return Object.freeze({
    scheme: settings.scheme,
    verify({ headers, body }: { headers: RequestHeaders; body: Buffer }): VerifyResult {
      assertRawBody(body);
      return check(headers ?? {}, body);
    },
  });
}

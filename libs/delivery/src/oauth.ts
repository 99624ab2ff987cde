import { createTokenProvider, type TokenProvider } from '@bus/auth';
import type { Bus } from '@bus/bus';
import type { ResolvedDelivery } from './settings.js';

/**
 * The connector's OAuth2 token provider, when its target uses OAuth2: tokens shared through
 * `bus_tokens` by every process that calls the target (deliver, reconcile), one refresh at a time.
 */
export async function oauthFor(bus: Bus, delivery: ResolvedDelivery, fetchFn?: typeof fetch): Promise<TokenProvider | undefined> {
  const auth = delivery.settings.kind === 'http' ? delivery.settings.auth : undefined;
  if (auth?.kind !== 'oauth2-client-credentials' && auth?.kind !== 'oauth2-refresh-token') return undefined;
  return createTokenProvider({ kv: await bus.kv(bus.names.kv.tokens), connector: delivery.connector.name, config: auth, env: delivery.env, fetchFn });
}

import { createTokenProvider, loadTokenKeys, type TokenProvider } from '@bus/auth';
import type { Bus } from '@bus/bus';
import type { Logger } from '@bus/observability';
import type { ResolvedDelivery } from './settings.js';

/**
 * The connector's OAuth2 token provider, when its target uses OAuth2: tokens sealed in
 * `bus_tokens` under BUS_TOKEN_KEY and shared by every process that calls the target (deliver,
 * reconcile), one refresh at a time under a lease in `bus_leases`. Throws CONFIG_INVALID when
 * BUS_TOKEN_KEY is unset under NODE_ENV=production (or malformed), so such a service does not start.
 */
export async function oauthFor(bus: Bus, delivery: ResolvedDelivery, fetchFn?: typeof fetch, log?: Logger): Promise<TokenProvider | undefined> {
  const auth = delivery.settings.kind === 'http' ? delivery.settings.auth : undefined;
  if (auth?.kind !== 'oauth2-client-credentials' && auth?.kind !== 'oauth2-refresh-token') return undefined;
  const connector = delivery.connector.name;
  const keys = loadTokenKeys(delivery.env, () => log?.warn({ connector }, 'BUS_TOKEN_KEY is unset: OAuth2 tokens are sealed with the demo key, which is refused under NODE_ENV=production'));
  return createTokenProvider({
    kv: await bus.kv(bus.names.kv.tokens), leases: await bus.kv(bus.names.kv.leases),
    connector, config: auth, env: delivery.env, keys, fetchFn, log,
  });
}

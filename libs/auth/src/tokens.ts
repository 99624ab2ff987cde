import { BusError } from '@bus/errors';
import type { KV } from '@nats-io/kv';

/** OAuth2 settings as data; every value that is secret comes from the environment. */
export type OAuth2Config =
  | { kind: 'oauth2-client-credentials'; tokenUrlEnv: string; clientIdEnv: string; clientSecretEnv: string; scope?: string; skewSec?: number }
  | { kind: 'oauth2-refresh-token'; tokenUrlEnv: string; clientIdEnv: string; clientSecretEnv: string; refreshTokenEnv: string; skewSec?: number };

interface Stored {
  accessToken: string;
  expiresAtMs: number;
  refreshToken?: string;
}

export interface TokenProviderOptions {
  /** The shared tokens bucket (`bus_tokens`): one token per connector for every process. */
  kv: KV;
  connector: string;
  config: OAuth2Config;
  env: NodeJS.ProcessEnv;
  fetchFn?: typeof fetch;
  now?: () => number;
  /** How long a process waits for another's refresh before trying itself. Default 10 000 ms. */
  waitForOtherMs?: number;
}

/** A refresh failure: permanent (credentials refused) or transient (token endpoint down). */
export class TokenError extends BusError {}

function need(env: NodeJS.ProcessEnv, name: string, connector: string): string {
  const v = env[name];
  if (!v) throw new TokenError('AUTH_CONFIG_MISSING', 'permanent', `connector "${connector}": set ${name} (OAuth2 credentials come from the environment)`);
  return v;
}

/**
 * OAuth2 access tokens for one connector: refreshed `skewSec` (default 60) before expiry,
 * shared through KV so every process uses the same one, and refreshed once at a time —
 * in a process by a shared promise, across processes by a lock key in the bucket.
 */
export function createTokenProvider(o: TokenProviderOptions) {
  const c = o.config;
  const now = o.now ?? Date.now;
  const skewMs = (c.skewSec ?? 60) * 1000;
  const tokenUrl = need(o.env, c.tokenUrlEnv, o.connector);
  const clientId = need(o.env, c.clientIdEnv, o.connector);
  const clientSecret = need(o.env, c.clientSecretEnv, o.connector);
  const initialRefresh = c.kind === 'oauth2-refresh-token' ? need(o.env, c.refreshTokenEnv, o.connector) : undefined;
  const key = `oauth.${o.connector}`;
  const lockKey = `oauth.${o.connector}.refreshing`;
  let cached: Stored | undefined;
  let inFlight: Promise<Stored> | undefined;
  let refreshes = 0;

  const fresh = (t: Stored | undefined): t is Stored => !!t && t.expiresAtMs - skewMs > now();

  async function fromKv(): Promise<Stored | undefined> {
    const e = await o.kv.get(key);
    return e?.operation === 'PUT' && e.value.length ? (e.json() as Stored) : undefined;
  }

  async function requestToken(previous: Stored | undefined): Promise<Stored> {
    const body = new URLSearchParams(previous?.refreshToken || initialRefresh
      ? { grant_type: 'refresh_token', refresh_token: previous?.refreshToken ?? initialRefresh! }
      : { grant_type: 'client_credentials', ...(c.kind === 'oauth2-client-credentials' && c.scope ? { scope: c.scope } : {}) });
    let res: Response;
    try {
      res = await (o.fetchFn ?? fetch)(tokenUrl, {
        method: 'POST', body, signal: AbortSignal.timeout(10_000),
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}` },
      });
    } catch (cause) {
      throw new TokenError('AUTH_TOKEN_ENDPOINT_UNREACHABLE', 'transient', `connector "${o.connector}": the token endpoint did not answer (${(cause as Error).message}); deliveries wait and retry`, { cause });
    }
    if (!res.ok) {
      const permanent = res.status === 400 || res.status === 401 || res.status === 403;
      throw new TokenError(`AUTH_TOKEN_REFUSED_${res.status}`, permanent ? 'permanent' : 'transient',
        `connector "${o.connector}": the token endpoint answered ${res.status}${permanent ? `: check ${c.clientIdEnv} / ${c.clientSecretEnv}${initialRefresh ? ` / ${c.kind === 'oauth2-refresh-token' ? c.refreshTokenEnv : ''}` : ''}` : '; retried later'}`);
    }
    const j = (await res.json()) as { access_token?: string; expires_in?: number; refresh_token?: string };
    if (!j.access_token) throw new TokenError('AUTH_TOKEN_MALFORMED', 'permanent', `connector "${o.connector}": the token endpoint answered without access_token`);
    refreshes++;
    return { accessToken: j.access_token, expiresAtMs: now() + (j.expires_in ?? 3600) * 1000, refreshToken: j.refresh_token ?? previous?.refreshToken };
  }

  async function refresh(rejected?: string): Promise<Stored> {
    const shared = await fromKv();
    if (fresh(shared) && shared.accessToken !== rejected) return shared; // another process refreshed already
    let locked = false;
    try {
      await o.kv.create(lockKey, String(now())); // fails while another process refreshes
      locked = true;
    } catch {
      // a lock older than 30 s belongs to a process that died mid-refresh: take it over
      const lock = await o.kv.get(lockKey);
      if (lock && Number(lock.string()) < now() - 30_000) locked = await o.kv.update(lockKey, String(now()), lock.revision).then(() => true, () => false);
    }
    if (!locked) {
      const deadline = now() + (o.waitForOtherMs ?? 10_000);
      while (now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        const t = await fromKv();
        if (fresh(t) && t.accessToken !== rejected) return t;
      }
    }
    try {
      const t = await requestToken(shared);
      await o.kv.put(key, JSON.stringify(t));
      return t;
    } finally {
      if (locked) await o.kv.purge(lockKey).catch(() => undefined);
    }
  }

  const provider = {
    /** A valid access token; refreshes when it is about to expire. Never logged by the bus. */
    async token(): Promise<string> {
      if (fresh(cached)) return cached.accessToken;
      inFlight ??= (async () => (fresh(await fromKv()) ? (await fromKv())! : refresh()))().finally(() => {
        inFlight = undefined;
      });
      cached = await inFlight;
      return cached.accessToken;
    },
    /** The target said 401 with this token: get a new one (once, however many callers saw the 401). */
    async renew(rejected: string): Promise<string> {
      if (cached && cached.accessToken !== rejected && fresh(cached)) return cached.accessToken;
      inFlight ??= refresh(rejected).finally(() => {
        inFlight = undefined;
      });
      cached = await inFlight;
      return cached.accessToken;
    },
    /** When the current token expires (ms since epoch), for the token-expiry metric. */
    expiresAtMs: () => cached?.expiresAtMs,
    /** Token requests this process made (tests, metrics). */
    refreshes: () => refreshes,
  };
  return provider;
}
export type TokenProvider = ReturnType<typeof createTokenProvider>;

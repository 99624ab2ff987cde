import * as oauth from 'oauth4webapi';
import { TokenError } from './errors.js';

/** The token endpoint's answer. */
export interface GrantAnswer {
  accessToken: string;
  /** A new refresh token, when the provider rotates them. */
  refreshToken?: string;
  expiresInSec: number;
  /** The scopes granted, when the answer says (`scope`, space-separated); absent: the provider did not say. */
  scopes?: string[];
}

export interface GrantRequest {
  connector: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** A refresh-token grant, or client credentials (with an optional scope). */
  grant: { refreshToken: string } | { scope?: string };
  /** The request is given up after this; a refresh-token request then is in doubt. */
  timeoutMs: number;
  /** Variable names for the messages: what an operator checks. */
  names: { clientId: string; clientSecret: string };
  fetchFn?: typeof fetch;
}

/** Errors that mean the connection was never made: nothing reached the provider, the refresh token is unused. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Whatever the provider said, cut short, with anything secret taken out. */
function said(text: string | undefined, secrets: string[]): string {
  let t = (text ?? '').slice(0, 200);
  for (const s of secrets) if (s) t = t.split(s).join('[redacted]');
  return t ? `: "${t}"` : '';
}

/**
 * One token request through oauth4webapi (client_secret_basic), classified: a refused refresh
 * token (invalid_grant) or refused client credentials are permanent, an endpoint that fails
 * (5xx, 429, temporarily_unavailable, not reachable) transient, and a refresh-token request
 * whose answer never came (timeout, connection lost after sending) ambiguous — the provider
 * may have rotated the refresh token meanwhile (AUTH_REFRESH_IN_DOUBT).
 */
export async function requestGrant(r: GrantRequest): Promise<GrantAnswer> {
  const url = new URL(r.tokenUrl);
  const as: oauth.AuthorizationServer = { issuer: url.origin, token_endpoint: url.href };
  const client: oauth.Client = { client_id: r.clientId };
  const refresh = 'refreshToken' in r.grant ? r.grant.refreshToken : undefined;
  const secrets = [r.clientSecret, refresh ?? ''];
  const who = `connector "${r.connector}"`;
  const options = {
    signal: AbortSignal.timeout(r.timeoutMs),
    [oauth.allowInsecureRequests]: url.protocol === 'http:',
    ...(r.fetchFn ? { [oauth.customFetch]: r.fetchFn } : {}),
  };
  const auth = oauth.ClientSecretBasic(r.clientSecret);
  let status: number | undefined;
  try {
    const res = refresh !== undefined
      ? await oauth.refreshTokenGrantRequest(as, client, auth, refresh, options)
      : await oauth.clientCredentialsGrantRequest(as, client, auth, new URLSearchParams('scope' in r.grant && r.grant.scope ? { scope: r.grant.scope } : {}), options);
    status = res.status;
    const j = refresh !== undefined ? await oauth.processRefreshTokenResponse(as, client, res) : await oauth.processClientCredentialsResponse(as, client, res);
    const scopes = typeof j.scope === 'string' ? j.scope.split(' ').filter(Boolean) : undefined;
    return { accessToken: j.access_token, refreshToken: j.refresh_token, expiresInSec: j.expires_in ?? 3600, ...(scopes ? { scopes } : {}) };
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) {
      const why = `${err.error}${said(err.error_description, secrets)}`;
      if (err.error === 'invalid_grant' && refresh !== undefined) {
        throw new TokenError('AUTH_REFRESH_TOKEN_REFUSED', 'permanent', `${who}: the token endpoint refused the refresh token (${why}): it was revoked, expired, ` +
          `or already used. Get a new one by consent, then: bus connectors auth ${r.connector} --set-refresh-token`, { cause: err });
      }
      if (err.error === 'temporarily_unavailable' || err.error === 'server_error' || err.error === 'slow_down' || err.status === 429) {
        throw new TokenError('AUTH_TOKEN_ENDPOINT_FAILED', 'transient', `${who}: the token endpoint answered ${err.status} ${why}; retried later`, { cause: err });
      }
      throw new TokenError('AUTH_CLIENT_REFUSED', 'permanent', `${who}: the token endpoint refused the request (${err.status} ${why}): check ` +
        `${r.names.clientId} / ${r.names.clientSecret}, then: bus connectors resume ${r.connector}`, { cause: err });
    }
    if (err instanceof oauth.WWWAuthenticateChallengeError) {
      throw new TokenError('AUTH_CLIENT_REFUSED', 'permanent', `${who}: the token endpoint refused the client (${err.status}): check ` +
        `${r.names.clientId} / ${r.names.clientSecret}, then: bus connectors resume ${r.connector}`, { cause: err });
    }
    if (status !== undefined) {
      if (status === 429 || status === 408 || status >= 500) {
        throw new TokenError('AUTH_TOKEN_ENDPOINT_FAILED', 'transient', `${who}: the token endpoint answered ${status}; retried later`, { cause: err });
      }
      if (status === 400 || status === 401 || status === 403) {
        throw new TokenError('AUTH_CLIENT_REFUSED', 'permanent', `${who}: the token endpoint answered ${status}: check ${r.names.clientId} / ${r.names.clientSecret}` +
          `${refresh !== undefined ? ' and the refresh token' : ''}, then: bus connectors resume ${r.connector}`, { cause: err });
      }
      throw new TokenError('AUTH_TOKEN_MALFORMED', 'permanent', `${who}: the token endpoint answered ${status} with no usable token (${(err as Error).message}); check the token URL`, { cause: err });
    }
    const code = ((err as { cause?: { code?: string } }).cause?.code) ?? '';
    const timedOut = (err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError';
    if (NOT_SENT.has(code)) {
      throw new TokenError('AUTH_TOKEN_ENDPOINT_UNREACHABLE', 'transient', `${who}: the token endpoint could not be reached (${code}); nothing was sent, retried later`, { cause: err });
    }
    if (refresh !== undefined) {
      throw new TokenError('AUTH_REFRESH_IN_DOUBT', 'ambiguous', `${who}: the refresh request got no answer (${timedOut ? `timed out after ${r.timeoutMs} ms` : (err as Error).message}); ` +
        'the provider may have used the refresh token. The next refresh re-reads the shared state first and tries the stored refresh token only if nothing newer was stored', { cause: err });
    }
    throw new TokenError('AUTH_TOKEN_ENDPOINT_UNREACHABLE', 'transient', `${who}: the token endpoint did not answer (${timedOut ? `timed out after ${r.timeoutMs} ms` : (err as Error).message}); retried later`, { cause: err });
  }
}

import { isCasConflict } from '@bus/lease';
import type { KV } from '@nats-io/kv';
import { open, seal, sealedWith, type TokenKeys } from './seal.js';

/**
 * What `oauth.<connector>` in `bus_tokens` holds: facts in the clear (for `bus connectors auth`
 * and the refresh decisions), the tokens themselves sealed (AES-256-GCM, see seal.ts).
 */
export interface TokenRecord {
  v: 2;
  /** `{accessToken?, refreshToken?}` sealed under BUS_TOKEN_KEY's first key, bound to this key. */
  sealed: string;
  /** When the stored access token expires (ms since epoch); absent: none is stored. */
  expiresAtMs?: number;
  hasRefreshToken: boolean;
  /** +1 each time another refresh token is stored (rotation, an operator): tells a refresh's answer from a stale one. */
  refreshGeneration: number;
  /** Last successful token request, and by which process. */
  refreshedAt?: string;
  refreshedBy?: string;
  /** Where the stored refresh token came from, and when. */
  refreshTokenFrom?: 'environment' | 'token endpoint' | 'operator';
  refreshTokenSetAt?: string;
  refreshTokenSetBy?: string;
  /**
   * The scopes the stored access token was granted, as the token endpoint said (RFC 6749 §5.1); absent when it did
   * not say (then they are the requested ones). Compared with the connector's `requiredScopes` after every refresh.
   */
  scopes?: string[];
  /** Last failed token request (never a token in it). Cleared by the next success. */
  lastError?: { at: string; code: string; message: string };
  /** The stored refresh token was refused (invalid_grant): no process sends it again; an operator sets a new one. */
  refused?: { at: string; code: string };
  /** A request with the stored refresh token got no answer: the provider may have rotated it. */
  inDoubt?: { since: string; by: string };
}

/** The tokens themselves: only ever in memory, or sealed. */
export interface Secrets {
  accessToken?: string;
  refreshToken?: string;
}

/** One read of a connector's tokens: revision 0 = nothing stored. */
export interface TokenEntry {
  revision: number;
  record?: TokenRecord;
  secrets: Secrets;
  /** Stored by an older version unsealed: sealed again at the next write. */
  legacy?: boolean;
}

export const tokenKey = (connector: string) => `oauth.${connector}`;

/** Someone else wrote the key since it was read (the compare-and-set lost). */
export { isCasConflict };

/**
 * Reads a connector's tokens. Without `keys` only the facts (the CLI's view); with them the
 * tokens too (AUTH_TOKEN_KEY_UNKNOWN / AUTH_TOKEN_SEAL_BROKEN when they do not open).
 */
export async function readTokens(kv: KV, connector: string, keys?: TokenKeys): Promise<TokenEntry> {
  const e = await kv.get(tokenKey(connector));
  if (e?.operation !== 'PUT' || e.length === 0) return { revision: e?.revision ?? 0, secrets: {} };
  const raw = e.json() as Partial<TokenRecord> & { accessToken?: string; expiresAtMs?: number; refreshToken?: string };
  if (raw.v !== 2) {
    // an older version's plaintext entry: read it once, seal it at the next write
    const secrets = { accessToken: raw.accessToken, refreshToken: raw.refreshToken };
    return { revision: e.revision, legacy: true, secrets,
      record: { v: 2, sealed: '', expiresAtMs: raw.expiresAtMs, hasRefreshToken: !!raw.refreshToken, refreshGeneration: 0, refreshTokenFrom: 'environment' } };
  }
  const record = raw as TokenRecord;
  const secrets = keys ? (JSON.parse(open(record.sealed, tokenKey(connector), keys, connector)) as Secrets) : {};
  return { revision: e.revision, record, secrets };
}

/**
 * Writes `record` with `secrets` sealed, by compare-and-set on `revision` (0: the key must be
 * absent): an older token never replaces a newer one. Returns the new revision; a lost
 * compare-and-set throws (see isCasConflict).
 */
export async function writeTokens(kv: KV, connector: string, keys: TokenKeys, revision: number, record: Omit<TokenRecord, 'v' | 'sealed' | 'hasRefreshToken'>, secrets: Secrets): Promise<number> {
  const key = tokenKey(connector);
  const full: TokenRecord = { v: 2, ...record, hasRefreshToken: !!secrets.refreshToken, sealed: seal(JSON.stringify(secrets), key, keys) };
  const text = JSON.stringify(full);
  return revision === 0 ? kv.create(key, text) : kv.update(key, text, revision);
}

/** What `bus connectors auth <connector>` shows: never a token. */
export interface TokenState {
  connector: string;
  stored: boolean;
  expiresAt?: string;
  hasRefreshToken: boolean;
  refreshedAt?: string;
  refreshedBy?: string;
  refreshTokenFrom?: string;
  refreshTokenSetAt?: string;
  refreshTokenSetBy?: string;
  refreshGeneration?: number;
  lastError?: TokenRecord['lastError'];
  refused?: TokenRecord['refused'];
  inDoubt?: TokenRecord['inDoubt'];
  /** Id of the key that sealed it; `unsealed` for an older version's entry. */
  sealedWith?: string;
}

export async function tokenState(kv: KV, connector: string): Promise<TokenState> {
  const { record, legacy } = await readTokens(kv, connector);
  if (!record) return { connector, stored: false, hasRefreshToken: false };
  return {
    connector, stored: true, hasRefreshToken: record.hasRefreshToken,
    ...(record.expiresAtMs ? { expiresAt: new Date(record.expiresAtMs).toISOString() } : {}),
    refreshedAt: record.refreshedAt, refreshedBy: record.refreshedBy, refreshTokenFrom: record.refreshTokenFrom,
    refreshTokenSetAt: record.refreshTokenSetAt, refreshTokenSetBy: record.refreshTokenSetBy, refreshGeneration: record.refreshGeneration,
    lastError: record.lastError, refused: record.refused, inDoubt: record.inDoubt,
    sealedWith: legacy ? 'unsealed' : sealedWith(record.sealed),
  };
}

/**
 * Installs a refresh token an operator got by a new consent, in place of whatever is stored
 * (the stored access token goes too: the next call refreshes with the new refresh token). By
 * compare-and-set, retried when a refresh wrote meanwhile; a refresh in flight with the old
 * refresh token then finds the generation changed and discards its answer.
 */
export async function installRefreshToken(o: { kv: KV; connector: string; keys: TokenKeys; refreshToken: string; by: string }): Promise<TokenState> {
  for (let attempt = 1; ; attempt++) {
    const { revision, record } = await readTokens(o.kv, o.connector);
    const at = new Date().toISOString();
    try {
      await writeTokens(o.kv, o.connector, o.keys, revision, {
        refreshGeneration: (record?.refreshGeneration ?? 0) + 1, refreshTokenFrom: 'operator', refreshTokenSetAt: at,
        refreshTokenSetBy: o.by, refreshedAt: record?.refreshedAt, refreshedBy: record?.refreshedBy,
      }, { refreshToken: o.refreshToken });
      return tokenState(o.kv, o.connector);
    } catch (err) {
      if (!isCasConflict(err) || attempt >= 5) throw err;
    }
  }
}

import { hostname } from 'node:os';
import { BusError } from '@bus/errors';
import { acquireLease, type Lease } from '@bus/lease';
import type { Logger } from '@bus/observability';
import type { KV } from '@nats-io/kv';
import { TokenError } from './errors.js';
import { requestGrant } from './grant.js';
import { loadTokenKeys, type TokenKeys } from './seal.js';
import { isCasConflict, readTokens, type Secrets, type TokenEntry, type TokenRecord, tokenKey, writeTokens } from './store.js';

/** OAuth2 settings as data; every value that is secret comes from the environment. */
export type OAuth2Config = (
  | { kind: 'oauth2-client-credentials'; tokenUrlEnv: string; clientIdEnv: string; clientSecretEnv: string; scope?: string }
  | { kind: 'oauth2-refresh-token'; tokenUrlEnv: string; clientIdEnv: string; clientSecretEnv: string; refreshTokenEnv: string }
) & {
  /** Refresh this long before the access token expires. Default 60 s. */
  skewSec?: number;
  /** A token request is given up after this; a refresh-token request is then in doubt (AUTH_REFRESH_IN_DOUBT). Default 30 000 ms. */
  requestTimeoutMs?: number;
};

export interface TokenProviderOptions {
  /** Required. The shared tokens bucket (`bus_tokens`): one entry per connector, for every process. */
  kv: KV;
  /** Required. The leases bucket (`bus_leases`): one refresh at a time across processes (`oauth.<connector>`). */
  leases: KV;
  connector: string;
  config: OAuth2Config;
  /** Where the credentials are read from (and BUS_TOKEN_KEY, when `keys` is not given). */
  env: NodeJS.ProcessEnv;
  /** What tokens are sealed with. Default loadTokenKeys(env). */
  keys?: TokenKeys;
  fetchFn?: typeof fetch;
  now?: () => number;
  log?: Logger;
  /** A refresher that died is taken over this long after its last lease renewal. Default 10 000 ms. */
  leaseTtlMs?: number;
  /** Who refreshes, in logs and in `bus connectors auth`. Default `<hostname>:<pid>`. */
  holder?: string;
}

function need(env: NodeJS.ProcessEnv, name: string, connector: string): string {
  const v = env[name];
  if (!v) throw new TokenError('AUTH_CONFIG_MISSING', 'permanent', `connector "${connector}": set ${name} (OAuth2 credentials come from the environment)`);
  return v;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Cached {
  accessToken: string;
  expiresAtMs: number;
  skewMs: number;
  /** Granted with this token, when known. */
  scopes?: string[];
}

/**
 * OAuth2 access tokens for one connector, kept sealed in `bus_tokens` and shared by every process.
 * An access token is refreshed `skewSec` before it expires, once at a time: in a process by one
 * shared promise, across processes by a lease (`bus_leases`, `oauth.<connector>`). A process that
 * cannot take the lease never sends the refresh token itself: it waits until the holder stored
 * its answer or the lease lapsed, then reads again. The holder stores the answer (new refresh
 * token included) by compare-and-set before any caller gets the access token. See README → OAuth2.
 */
export function createTokenProvider(o: TokenProviderOptions) {
  const c = o.config;
  const { connector } = o;
  const now = o.now ?? Date.now;
  const skewMs = (c.skewSec ?? 60) * 1000;
  const timeoutMs = c.requestTimeoutMs ?? 30_000;
  const leaseTtlMs = o.leaseTtlMs ?? 10_000;
  // a waiter gives up (transient, retried) only after the holder's longest request, a lapsed lease and a margin
  const waitLimitMs = 2 * timeoutMs + leaseTtlMs + 5_000;
  const holder = o.holder ?? `${hostname()}:${process.pid}`;
  const log = o.log?.child({ connector });
  const keys = o.keys ?? loadTokenKeys(o.env, () => log?.warn('BUS_TOKEN_KEY is unset: tokens are sealed with the demo key (refused under NODE_ENV=production)'));
  const tokenUrl = need(o.env, c.tokenUrlEnv, connector);
  const clientId = need(o.env, c.clientIdEnv, connector);
  const clientSecret = need(o.env, c.clientSecretEnv, connector);
  const initialRefresh = c.kind === 'oauth2-refresh-token' ? need(o.env, c.refreshTokenEnv, connector) : undefined;
  let cached: Cached | undefined;
  let inFlight: Promise<Cached> | undefined;
  let refreshes = 0;
  /** An answer the token endpoint gave that could not be stored yet (NATS away): stored before it is used. */
  let unsaved: { basedOn: TokenEntry; record: Omit<TokenRecord, 'v' | 'sealed' | 'hasRefreshToken'>; secrets: Secrets } | undefined;

  // a token that lives shorter than twice the skew is refreshed at half its life, not at every call
  const skewFor = (r: TokenRecord | undefined) => {
    const lifeMs = (r?.expiresAtMs ?? 0) - Date.parse(r?.refreshedAt ?? '');
    return Number.isFinite(lifeMs) && lifeMs > 0 ? Math.min(skewMs, lifeMs / 2) : skewMs;
  };
  const fresh = (t: Cached | undefined): t is Cached => !!t && t.expiresAtMs - t.skewMs > now();
  const usable = (e: TokenEntry, rejected?: string) =>
    !!e.secrets.accessToken && (e.record?.expiresAtMs ?? 0) - skewFor(e.record) > now() && e.secrets.accessToken !== rejected;
  const cachedOf = (e: TokenEntry): Cached => ({ accessToken: e.secrets.accessToken!, expiresAtMs: e.record!.expiresAtMs!, skewMs: skewFor(e.record), scopes: e.record?.scopes });
  const facts = ({ v: _v, sealed: _s, hasRefreshToken: _h, ...rest }: TokenRecord) => rest;
  const refusedError = (r: TokenRecord) => new TokenError('AUTH_REFRESH_TOKEN_REFUSED', 'permanent',
    `connector "${connector}": the stored refresh token was refused at ${r.refused!.at} (${r.lastError?.message.replace(/^\[[A-Z_0-9]+\] /, '') ?? r.refused!.code}); ` +
    `no process sends it again. Get a new one by consent, then: bus connectors auth ${connector} --set-refresh-token`);

  /** Stores a token answer by compare-and-set; undefined when another refresh token was stored meanwhile (ours is discarded). */
  async function save(basedOn: TokenEntry, record: Omit<TokenRecord, 'v' | 'sealed' | 'hasRefreshToken'>, secrets: Secrets): Promise<Cached | undefined> {
    let revision = basedOn.revision;
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        await writeTokens(o.kv, connector, keys, revision, record, secrets);
        unsaved = undefined;
        return { accessToken: secrets.accessToken!, expiresAtMs: record.expiresAtMs!, skewMs: skewFor(record as TokenRecord), scopes: record.scopes };
      } catch (err) {
        if (!isCasConflict(err)) {
          unsaved = { basedOn: { ...basedOn, revision }, record, secrets };
          throw new TokenError('AUTH_TOKEN_NOT_STORED', 'transient', `connector "${connector}": the token endpoint answered, but bus_tokens could not store the answer ` +
            `(${(err as Error).message}); this process keeps it and stores it before using it. Retried later`, { cause: err });
        }
        const latest = await readTokens(o.kv, connector, keys);
        const same = latest.record?.refreshGeneration === basedOn.record?.refreshGeneration && latest.record?.refreshedAt === basedOn.record?.refreshedAt;
        if (!same) {
          unsaved = undefined;
          log?.warn('another token was stored while this refresh ran: its answer is discarded, the stored one is used');
          return undefined;
        }
        revision = latest.revision; // only facts changed (an error noted): ours is still the newest token
      }
    }
    return undefined;
  }

  /** Notes a failed request beside the tokens (best effort): the last error, a refused or in-doubt refresh token. */
  async function noteFailure(e: TokenEntry, err: TokenError): Promise<void> {
    const at = new Date(now()).toISOString();
    const base = e.record ? facts(e.record) : { refreshGeneration: 0 };
    const record = {
      ...base, lastError: { at, code: err.code, message: err.message.slice(0, 500) },
      ...(err.code === 'AUTH_REFRESH_TOKEN_REFUSED' ? { refused: { at, code: err.code } } : {}),
      ...(err.code === 'AUTH_REFRESH_IN_DOUBT' ? { inDoubt: { since: base.inDoubt?.since ?? at, by: holder } } : {}),
    };
    await writeTokens(o.kv, connector, keys, e.revision, record, e.secrets).catch(() => undefined);
  }

  /** Holding the refresh lease: read again, wait out a lapsed holder's request, then refresh and store. */
  async function refreshHolding(lease: Lease, rejected?: string): Promise<Cached | undefined> {
    let e = await readTokens(o.kv, connector, keys);
    if (usable(e, rejected)) return cachedOf(e);
    const previousDeadline = (lease.previous?.data as { requestDeadlineMs?: number } | undefined)?.requestDeadlineMs;
    if (previousDeadline && previousDeadline > Date.now()) {
      log?.warn({ previousHolder: lease.previous?.holder }, 'the previous refresher stopped mid-request: waiting out its request before reading again');
      await sleep(Math.min(previousDeadline - Date.now(), timeoutMs) + 500);
      e = await readTokens(o.kv, connector, keys);
      if (usable(e, rejected)) return cachedOf(e);
    }
    if (e.record?.refused) throw refusedError(e.record);
    if (e.record?.inDoubt) log?.warn({ inDoubtSince: e.record.inDoubt.since }, 'a refresh request got no answer earlier and nothing newer was stored: trying the stored refresh token once more');
    const refreshToken = c.kind === 'oauth2-refresh-token' ? (e.secrets.refreshToken ?? (e.record?.hasRefreshToken ? undefined : initialRefresh)) : undefined;
    if (c.kind === 'oauth2-refresh-token' && !refreshToken) {
      throw new TokenError('AUTH_NO_REFRESH_TOKEN', 'permanent', `connector "${connector}": no refresh token is stored. Get one by consent, then: bus connectors auth ${connector} --set-refresh-token`);
    }
    // a successor that takes the lease over waits until this request can no longer be answered
    if (!(await lease.data.set({ requestDeadlineMs: Date.now() + timeoutMs }))) return undefined;
    refreshes++;
    const answer = await requestGrant({
      connector, tokenUrl, clientId, clientSecret, timeoutMs, fetchFn: o.fetchFn, names: { clientId: c.clientIdEnv, clientSecret: c.clientSecretEnv },
      grant: refreshToken ? { refreshToken } : { scope: c.kind === 'oauth2-client-credentials' ? c.scope : undefined },
    }).catch(async (err: unknown) => {
      if (!(err instanceof TokenError)) throw err;
      const inDoubt = e.record?.inDoubt;
      const told = inDoubt && err.code === 'AUTH_REFRESH_TOKEN_REFUSED'
        ? new TokenError(err.code, err.failureClass, `${err.message.replace(/^\[[A-Z_0-9]+\] /, '')} (a request with it at ${inDoubt.since} got no answer: the provider probably rotated it then)`, { cause: err })
        : err;
      await noteFailure(e, told);
      throw told;
    });
    const at = new Date(now()).toISOString();
    const rotated = !!answer.refreshToken && answer.refreshToken !== refreshToken;
    const base = e.record ? facts(e.record) : { refreshGeneration: 0 };
    const record = {
      ...base, lastError: undefined, inDoubt: undefined, refused: undefined,
      expiresAtMs: now() + answer.expiresInSec * 1000, refreshedAt: at, refreshedBy: holder,
      // no scope in the answer: the token has the scope granted before, or the one requested (RFC 6749 §5.1, §6)
      scopes: answer.scopes ?? base.scopes ?? (c.kind === 'oauth2-client-credentials' && c.scope ? c.scope.split(' ').filter(Boolean) : undefined),
      ...(rotated ? { refreshGeneration: base.refreshGeneration + 1, refreshTokenFrom: 'token endpoint' as const, refreshTokenSetAt: at, refreshTokenSetBy: holder } : {}),
      ...(!rotated && refreshToken && !e.record?.hasRefreshToken ? { refreshGeneration: base.refreshGeneration + 1, refreshTokenFrom: 'environment' as const, refreshTokenSetAt: at } : {}),
    };
    const saved = await save(e, record, { accessToken: answer.accessToken, refreshToken: answer.refreshToken ?? refreshToken });
    if (saved) log?.info({ expiresAt: new Date(saved.expiresAtMs).toISOString(), rotated, holder }, 'access token refreshed and stored');
    return saved;
  }

  /** A usable access token: the stored one, or one refreshed by this process or another. */
  async function obtain(rejected?: string): Promise<Cached> {
    try {
      if (unsaved) {
        const stored = await save(unsaved.basedOn, unsaved.record, unsaved.secrets);
        if (stored && stored.accessToken !== rejected) return stored;
      }
      const until = performance.now() + waitLimitMs;
      for (let round = 1; ; round++) {
        const e = await readTokens(o.kv, connector, keys);
        if (usable(e, rejected)) {
          // an older version's unsealed entry is sealed now (best effort)
          if (e.legacy) await writeTokens(o.kv, connector, keys, e.revision, facts(e.record as TokenRecord), e.secrets).catch(() => undefined);
          return cachedOf(e);
        }
        if (e.record?.refused) throw refusedError(e.record);
        if (round > 1 && performance.now() > until) {
          throw new TokenError('AUTH_REFRESH_BUSY', 'transient', `connector "${connector}": another process has held the refresh for over ${waitLimitMs} ms ` +
            'without storing a token; this process does not send the refresh token itself. Retried later');
        }
        const lease = await acquireLease({ kv: o.leases, key: tokenKey(connector), ttlMs: leaseTtlMs, holder, log });
        if (!lease) {
          await sleep(250); // the holder stores its answer, or its lease lapses
          continue;
        }
        try {
          const got = await refreshHolding(lease, rejected);
          if (got) return got;
        } finally {
          await lease.release();
        }
      }
    } catch (err) {
      if (err instanceof TokenError) throw err;
      if (err instanceof BusError) throw new TokenError(err.code, err.failureClass, err.message.replace(/^\[[A-Z_0-9]+\] /, ''), { cause: err });
      throw new TokenError('AUTH_STORE_UNAVAILABLE', 'transient', `connector "${connector}": bus_tokens or bus_leases did not answer (${(err as Error).message}); retried later`, { cause: err });
    }
  }

  /** One obtain in flight per process; a caller that needs a token other than `rejected` asks again once. */
  async function shared(rejected?: string): Promise<string> {
    inFlight ??= obtain(rejected).finally(() => {
      inFlight = undefined;
    });
    let got = await inFlight;
    if (rejected !== undefined && got.accessToken === rejected) got = await obtain(rejected);
    cached = got;
    return got.accessToken;
  }

  return {
    /** A valid access token; refreshed when it is about to expire. Never logged by the bus. */
    async token(): Promise<string> {
      return fresh(cached) ? cached.accessToken : shared();
    },
    /** The target said 401 with this token: get another (once, however many callers saw the 401). */
    async renew(rejected: string): Promise<string> {
      return cached && cached.accessToken !== rejected && fresh(cached) ? cached.accessToken : shared(rejected);
    },
    /** The scopes the current token was granted (undefined: no token yet, or the provider did not say). */
    scopes: () => cached?.scopes,
    /** When the current token expires (ms since epoch), for the token-expiry metric. */
    expiresAtMs: () => cached?.expiresAtMs,
    /** Token requests this process made (tests, metrics). */
    refreshes: () => refreshes,
  };
}
export type TokenProvider = ReturnType<typeof createTokenProvider>;

import { randomBytes } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the token server got, and what it did with it. */
export interface TokenRequest {
  grant: string;
  /** The refresh token presented (refresh_token grant). */
  refreshToken?: string;
  /** issued; reuse (a rotated-away refresh token: its whole family is revoked); revoked; unknown; client (bad client credentials); dropped (the client left before a delayed request was processed). */
  outcome: 'issued' | 'reuse' | 'revoked' | 'unknown' | 'client' | 'dropped';
  at: number;
}

export interface TokenServerOptions {
  /** Client credentials it accepts (client_secret_basic). Default `bus` / `bus-secret`. */
  clientId?: string;
  clientSecret?: string;
  /** expires_in of every access token. Default 3600 s. */
  accessTtlSec?: number;
  /** `scope` of every token answer (space-separated); default none in the answer (the provider does not say). */
  scope?: string;
}

/**
 * A loopback OAuth2 token endpoint (`POST /token`) that behaves like a strict identity provider:
 * every refresh_token grant rotates the refresh token, and presenting a refresh token that was
 * already used revokes its whole family (OAuth 2.1 reuse detection), as do `revokeAll()`.
 * A request is processed when it arrives; `delayMs` holds the answer back afterwards, so a
 * client that gives up early has lost a rotation, as at a real slow provider. Tokens look like
 * `at_<hex>` / `rt_<hex>` so a test can search any text for every one ever issued.
 */
export async function startTokenServer(opts: TokenServerOptions = {}) {
  const clientId = opts.clientId ?? 'bus';
  const clientSecret = opts.clientSecret ?? 'bus-secret';
  const requests: TokenRequest[] = [];
  /** refresh token → its family and whether it was used. */
  const refresh = new Map<string, { family: number; used: boolean }>();
  const access = new Map<string, { family: number; expiresAtMs: number }>();
  const revoked = new Set<number>();
  let families = 0;
  let delayMs = 0;
  let processWhen: 'arrival' | 'answer' = 'arrival';
  let accessTtlSec = opts.accessTtlSec ?? 3600;
  let scope = opts.scope;
  const open = new Set<ServerResponse>();

  const newRefresh = (family: number) => {
    const t = `rt_${randomBytes(16).toString('hex')}`;
    refresh.set(t, { family, used: false });
    return t;
  };
  const issue = (family: number, withRefresh: boolean) => {
    const t = `at_${randomBytes(16).toString('hex')}`;
    access.set(t, { family, expiresAtMs: Date.now() + accessTtlSec * 1000 });
    return { access_token: t, token_type: 'Bearer', expires_in: accessTtlSec, ...(scope !== undefined ? { scope } : {}), ...(withRefresh ? { refresh_token: newRefresh(family) } : {}) };
  };

  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const form = new URLSearchParams(raw);
      const grant = form.get('grant_type') ?? '';
      const presented = form.get('refresh_token') ?? undefined;
      const basic = Buffer.from(String(req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
      const [id, secret] = basic.split(':').map((s) => decodeURIComponent(s.replace(/\+/g, ' ')));
      const handle = () => {
        let status = 200;
        let body: unknown;
        let outcome: TokenRequest['outcome'] = 'issued';
        const entry = presented ? refresh.get(presented) : undefined;
        if (req.url !== '/token' || id !== clientId || secret !== clientSecret) {
          [status, body, outcome] = [401, { error: 'invalid_client' }, 'client'];
        } else if (grant === 'client_credentials') {
          body = issue(++families, false);
        } else if (grant !== 'refresh_token' || !entry) {
          [status, body, outcome] = [400, { error: 'invalid_grant', error_description: 'unknown refresh token' }, 'unknown'];
        } else if (revoked.has(entry.family)) {
          [status, body, outcome] = [400, { error: 'invalid_grant', error_description: 'token family revoked' }, 'revoked'];
        } else if (entry.used) {
          revoked.add(entry.family);
          [status, body, outcome] = [400, { error: 'invalid_grant', error_description: 'refresh token reused: family revoked' }, 'reuse'];
        } else {
          entry.used = true;
          body = issue(entry.family, true);
        }
        requests.push({ grant, refreshToken: presented, outcome, at: Date.now() });
        return () => {
          if (res.destroyed) return;
          res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          res.end(JSON.stringify(body));
        };
      };
      if (delayMs === 0) return handle()();
      open.add(res);
      const done = () => open.delete(res);
      if (processWhen === 'arrival') {
        const answer = handle();
        setTimeout(() => {
          done();
          answer();
        }, delayMs);
        return;
      }
      // processed only when answered: a client that gave up first was never served (nothing rotated)
      setTimeout(() => {
        done();
        if (res.destroyed || req.socket.destroyed) requests.push({ grant, refreshToken: presented, outcome: 'dropped', at: Date.now() });
        else handle()();
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/token`,
    clientId,
    clientSecret,
    requests,
    /** Refresh-token requests that presented an already used refresh token. */
    reuses: () => requests.filter((r) => r.outcome === 'reuse').length,
    /** Every token ever issued (access and refresh): none may appear in logs or stored bytes. */
    issued: () => [...refresh.keys(), ...access.keys()],
    /** A new refresh token in a new family, as a consent gives one. */
    consent: () => newRefresh(++families),
    /** Whether `token` is an access token it issued, unexpired, of a family not revoked. */
    accepts: (token: string) => {
      const a = access.get(token);
      return !!a && a.expiresAtMs > Date.now() && !revoked.has(a.family);
    },
    /** Revokes every family (an administrator's "sign out everywhere"). */
    revokeAll: () => {
      for (let f = 1; f <= families; f++) revoked.add(f);
    },
    /**
     * Holds every answer back this long. `arrival` (default): the request is processed at once, so a
     * client that gives up has lost a rotation; `answer`: processed only when answered, and not at
     * all when the client left first (an overloaded endpoint that never got to it).
     */
    setDelay: (ms: number, processed: 'arrival' | 'answer' = 'arrival') => {
      delayMs = ms;
      processWhen = processed;
    },
    setAccessTtl: (sec: number) => {
      accessTtlSec = sec;
    },
    /** The `scope` of the next answers (undefined: none said), e.g. a grant narrowed at the provider. */
    setScope: (s: string | undefined) => {
      scope = s;
    },
    async close() {
      for (const r of open) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
export type TestTokenServer = Awaited<ReturnType<typeof startTokenServer>>;

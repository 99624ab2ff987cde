import { createHmac, timingSafeEqual } from 'node:crypto';
import { BusError } from '@bus/errors';

/** One operator token: its name (recorded as who did an action) and its secret. */
export interface OperatorToken {
  name: string;
  token: string;
}

/**
 * CONSOLE_TOKENS: `name:token` pairs (or bare tokens, named `operator-<n>`), comma-separated.
 * Several at once so a token is rotated by adding the new one, then removing the old one;
 * a removed token's sessions end at the next request.
 */
export function parseTokens(value: string): OperatorToken[] {
  const tokens = value.split(',').map((t) => t.trim()).filter(Boolean).map((t, i) => {
    const at = t.indexOf(':');
    return at > 0 ? { name: t.slice(0, at), token: t.slice(at + 1) } : { name: `operator-${i + 1}`, token: t };
  });
  for (const t of tokens) {
    if (t.token.length < 12) {
      throw new BusError('CONFIG_INVALID', 'permanent', `CONSOLE_TOKENS: the token of "${t.name}" is shorter than 12 characters; use a long random one (openssl rand -hex 24)`);
    }
    if (!/^[A-Za-z0-9_.-]{1,40}$/.test(t.name)) throw new BusError('CONFIG_INVALID', 'permanent', `CONSOLE_TOKENS: "${t.name}" is no name (letters, digits, _ . -)`);
  }
  if (tokens.length === 0) throw new BusError('CONFIG_INVALID', 'permanent', 'CONSOLE_TOKENS is empty: set at least one name:token (the console refuses to run open)');
  return tokens;
}

const mac = (key: string, what: string) => createHmac('sha256', key).update(what).digest('base64url');
const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Sessions and CSRF tokens derived from the operator tokens (no server-side state, so any
 * number of console processes agree): the session cookie is `<name>.<HMAC(token, name)>`, the
 * CSRF token of a session is HMAC(token, `csrf:<name>`). Neither reveals the token.
 */
export function createAuth(tokens: OperatorToken[]) {
  return {
    /** The operator a bearer token belongs to, if any. */
    byToken(token: string | undefined): OperatorToken | undefined {
      return token ? tokens.find((t) => same(t.token, token)) : undefined;
    },
    session(op: OperatorToken): string {
      return `${op.name}.${mac(op.token, `session:${op.name}`)}`;
    },
    /** The operator of a session cookie, while its token is still in CONSOLE_TOKENS. */
    bySession(cookie: string | undefined): OperatorToken | undefined {
      const dot = cookie?.lastIndexOf('.') ?? -1;
      if (!cookie || dot < 1) return undefined;
      const name = cookie.slice(0, dot);
      return tokens.find((t) => t.name === name && same(mac(t.token, `session:${t.name}`), cookie.slice(dot + 1)));
    },
    csrf(op: OperatorToken): string {
      return mac(op.token, `csrf:${op.name}`);
    },
    checkCsrf(op: OperatorToken, given: unknown): boolean {
      return typeof given === 'string' && same(mac(op.token, `csrf:${op.name}`), given);
    },
  };
}
export type Auth = ReturnType<typeof createAuth>;

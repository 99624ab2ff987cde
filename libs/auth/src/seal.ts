import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { ConfigError } from '@bus/errors';
import { TokenError } from './errors.js';

/** One AES-256 key from BUS_TOKEN_KEY, with a short id that names it without revealing it. */
export interface TokenKey {
  /** First 8 hex digits of the key's SHA-256: stored beside what it sealed, so the right key opens it. */
  id: string;
  key: Buffer;
}

/** The keys tokens are sealed with: `seal` uses the first, `open` any. */
export interface TokenKeys {
  keys: readonly TokenKey[];
  /** `BUS_TOKEN_KEY` (set), `demo` (the development key outside production). */
  from: 'BUS_TOKEN_KEY' | 'demo';
}

/**
 * The key `npm start` prints and development runs use when BUS_TOKEN_KEY is unset. It is in the
 * repository, so it protects nothing: production (NODE_ENV=production) refuses to run without
 * a key of its own.
 */
export const DEMO_TOKEN_KEY = 'ZGVtby10b2tlbi1rZXktLW5ldmVyLWZvci1yZWFsLSE=';

const FORMAT = 'v1';

function keyFrom(text: string, position: number): TokenKey {
  const key = Buffer.from(text, /^[0-9a-f]{64}$/i.test(text) ? 'hex' : 'base64');
  if (key.length !== 32) {
    throw new ConfigError(`BUS_TOKEN_KEY entry ${position} is not a 256-bit key (${key.length} bytes after decoding; want 32). ` +
      'Make one with: openssl rand -base64 32. Several keys are comma-separated, the newest first');
  }
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key };
}

/**
 * The token keys from the environment: `BUS_TOKEN_KEY` is one or more comma-separated 256-bit
 * keys (base64, or 64 hex digits), the newest first: tokens are sealed with the first and opened
 * with whichever sealed them, so a key is rotated by putting the new one in front, and the old
 * one is dropped once every token was rewritten (`bus connectors auth <name>` shows which key).
 * Unset: outside production the demo key (`onDemo` is told), under NODE_ENV=production a
 * ConfigError — tokens are never stored unsealed, nor sealed with a key from the repository.
 */
export function loadTokenKeys(env: NodeJS.ProcessEnv, onDemo?: () => void): TokenKeys {
  const text = env.BUS_TOKEN_KEY?.trim();
  if (!text) {
    if (env.NODE_ENV === 'production') {
      throw new ConfigError('BUS_TOKEN_KEY is not set: OAuth2 tokens are stored sealed (AES-256-GCM) under it and NODE_ENV=production ' +
        'refuses the demo key. Set it to a key made with: openssl rand -base64 32 (the same in every process that shares bus_tokens)');
    }
    onDemo?.();
    return { keys: [keyFrom(DEMO_TOKEN_KEY, 1)], from: 'demo' };
  }
  const keys = text.split(',').map((t, i) => keyFrom(t.trim(), i + 1));
  return { keys, from: 'BUS_TOKEN_KEY' };
}

/**
 * Seals `plain` with the first key (AES-256-GCM, a fresh 96-bit nonce each time). `aad` binds
 * the result to where it is stored (the KV key), so a sealed value copied to another
 * connector does not open. Result: `v1.<key id>.<nonce>.<ciphertext+tag>` (base64url).
 */
export function seal(plain: string, aad: string, k: TokenKeys): string {
  const { id, key } = k.keys[0]!;
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return [FORMAT, id, iv.toString('base64url'), body.toString('base64url')].join('.');
}

/** The id of the key that sealed `sealed` (not secret). */
export const sealedWith = (sealed: string): string | undefined => sealed.split('.')[1];

/**
 * Opens what {@link seal} made. Throws AUTH_TOKEN_KEY_UNKNOWN when no configured key has its
 * id, AUTH_TOKEN_SEAL_BROKEN when it does not authenticate (altered, or moved to another key).
 */
export function open(sealed: string, aad: string, k: TokenKeys, connector: string): string {
  const [format, id, iv, body] = sealed.split('.');
  const key = k.keys.find((x) => x.id === id);
  if (format !== FORMAT || !iv || !body) {
    throw new TokenError('AUTH_TOKEN_SEAL_BROKEN', 'permanent', `connector "${connector}": the stored token is not in a format this version reads. ` +
      `Set a new refresh token: bus connectors auth ${connector} --set-refresh-token`);
  }
  if (!key) {
    throw new TokenError('AUTH_TOKEN_KEY_UNKNOWN', 'permanent', `connector "${connector}": the stored token is sealed with key ${id}, which is not in ` +
      `BUS_TOKEN_KEY (${k.keys.map((x) => x.id).join(', ')}${k.from === 'demo' ? ', the demo key' : ''}). Add that key after the current one, ` +
      `or set a new refresh token: bus connectors auth ${connector} --set-refresh-token`);
  }
  try {
    const raw = Buffer.from(body, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(iv, 'base64url')).setAAD(Buffer.from(aad));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw new TokenError('AUTH_TOKEN_SEAL_BROKEN', 'permanent', `connector "${connector}": the stored token does not authenticate under key ${id} ` +
      `(altered, or written for another connector). Set a new refresh token: bus connectors auth ${connector} --set-refresh-token`, { cause });
  }
}

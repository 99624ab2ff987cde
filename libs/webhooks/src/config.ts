import { BusError } from '@bus/errors';
import { standardWebhooksKey } from './crypto.js';
import {
  HmacAlgorithms, type HmacAlgorithm, type Scheme, Schemes, SignatureEncodings, type SignatureEncoding, type VerifierConfig,
} from './types.js';

/** A piece of the generic scheme's signed content: literal text, the body or the timestamp. */
export type TemplatePart = { text: string } | 'body' | 'timestamp';

/** A checked configuration, copied so later changes to the caller's object change nothing. */
export interface Settings {
  scheme: Scheme;
  /** HMAC keys, in the order of `secrets`. */
  keys: Buffer[];
  toleranceSec: number;
  nowMs: () => number;
}

/** The generic scheme's checked settings. */
export interface HmacSettings extends Settings {
  header: string;
  algorithm: HmacAlgorithm;
  encoding: SignatureEncoding;
  prefix: string;
  timestampHeader: string | undefined;
  template: TemplatePart[];
  deliveryIdHeader: string | undefined;
}

const COMMON_KEYS = ['scheme', 'secrets', 'toleranceSec', 'nowMs'];
const HMAC_KEYS = ['header', 'algorithm', 'encoding', 'prefix', 'timestampHeader', 'signedPayload', 'deliveryIdHeader'];
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/; // an RFC 9110 token
export const DEFAULT_TOLERANCE_SEC = 300;

/** The error for a configuration with problems; each problem names its field. */
export function configError(what: string, problems: string[]): BusError {
  return new BusError('WEBHOOK_CONFIG_INVALID', 'permanent',
    `${what} is invalid, nothing was verified: ${problems.join('; ')}. Fix the source's verification settings (or its secrets variable)`);
}

/** Problems with a secrets list; never quotes a secret, only its position. */
function secretProblems(scheme: Scheme, secrets: unknown): string[] {
  if (!Array.isArray(secrets) || secrets.length === 0) return ['secrets: required, a list of at least one secret'];
  const problems: string[] = [];
  secrets.forEach((s: unknown, i) => {
    const field = `secrets[${i}]`;
    if (typeof s !== 'string' || s === '') problems.push(`${field}: must be a non-empty string`);
    else if (s.trim() !== s) problems.push(`${field}: has leading or trailing whitespace (copied with a newline?)`);
    else if (scheme === 'standard-webhooks' && !standardWebhooksKey(s)) {
      problems.push(`${field}: must be whsec_<base64>, as the sender shows it (the part after whsec_ is not base64)`);
    }
  });
  return problems;
}

function parseTemplate(template: string, problems: string[]): TemplatePart[] {
  const parts: TemplatePart[] = [];
  for (const piece of template.split(/(\{[^{}]*\})/)) {
    if (piece === '{body}') parts.push('body');
    else if (piece === '{timestamp}') parts.push('timestamp');
    else if (/^\{.*\}$/.test(piece)) problems.push(`signedPayload: unknown placeholder ${piece}; only {body} and {timestamp} are replaced`);
    else if (piece !== '') parts.push({ text: piece });
  }
  const bodies = parts.filter((p) => p === 'body').length;
  if (bodies !== 1) problems.push(`signedPayload: must contain {body} exactly once (found ${bodies})`);
  return parts;
}

function optionalHeader(value: unknown, field: string, problems: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !HEADER_NAME.test(value)) problems.push(`${field}: must be a header name such as x-webhook-timestamp`);
  return typeof value === 'string' ? value.toLowerCase() : undefined;
}

function hmacSettings(c: Record<string, unknown>, problems: string[]): Omit<HmacSettings, keyof Settings> {
  if (typeof c.header !== 'string' || !HEADER_NAME.test(c.header)) problems.push('header: required, the name of the header carrying the signature, e.g. x-signature');
  const algorithm = (c.algorithm ?? 'sha256') as HmacAlgorithm;
  if (!HmacAlgorithms.includes(algorithm)) problems.push(`algorithm: must be one of ${HmacAlgorithms.join(', ')}`);
  const encoding = (c.encoding ?? 'hex') as SignatureEncoding;
  if (!SignatureEncodings.includes(encoding)) problems.push(`encoding: must be one of ${SignatureEncodings.join(', ')}`);
  if (c.prefix !== undefined && typeof c.prefix !== 'string') problems.push('prefix: must be text such as sha256=');
  const timestampHeader = optionalHeader(c.timestampHeader, 'timestampHeader', problems);
  const deliveryIdHeader = optionalHeader(c.deliveryIdHeader, 'deliveryIdHeader', problems);
  let template: TemplatePart[] = ['body'];
  if (c.signedPayload !== undefined) {
    if (typeof c.signedPayload !== 'string') problems.push('signedPayload: must be text such as {timestamp}.{body}');
    else template = parseTemplate(c.signedPayload, problems);
  }
  const signsTimestamp = template.includes('timestamp');
  if (signsTimestamp && !timestampHeader) problems.push('timestampHeader: required when signedPayload uses {timestamp}');
  if (timestampHeader && !signsTimestamp) {
    problems.push('signedPayload: must contain {timestamp} when timestampHeader is set (an unsigned timestamp stops no replay)');
  }
  return {
    header: String(c.header).toLowerCase(), algorithm, encoding, prefix: typeof c.prefix === 'string' ? c.prefix : '',
    timestampHeader, template, deliveryIdHeader,
  };
}

/**
 * Checks a verifier configuration and returns its settings. Throws `WEBHOOK_CONFIG_INVALID`
 * listing every problem, each naming its field; a secret's value is never quoted.
 */
export function parseConfig(config: VerifierConfig): Settings | HmacSettings {
  const c = (typeof config === 'object' && config !== null ? config : {}) as unknown as Record<string, unknown>;
  const scheme = c.scheme as Scheme;
  if (!Schemes.includes(scheme)) {
    throw configError('webhook verifier config', [`scheme: must be one of ${Schemes.join(', ')} (got ${JSON.stringify(c.scheme)})`]);
  }
  const problems = secretProblems(scheme, c.secrets);
  const toleranceSec = c.toleranceSec ?? DEFAULT_TOLERANCE_SEC;
  if (typeof toleranceSec !== 'number' || !Number.isFinite(toleranceSec) || toleranceSec <= 0) {
    problems.push(`toleranceSec: must be a number of seconds > 0 (got ${String(c.toleranceSec)}); default ${DEFAULT_TOLERANCE_SEC}`);
  }
  if (c.nowMs !== undefined && typeof c.nowMs !== 'function') problems.push('nowMs: must be a function returning unix milliseconds');
  const known = scheme === 'hmac' ? [...COMMON_KEYS, ...HMAC_KEYS] : COMMON_KEYS;
  for (const key of Object.keys(c)) {
    if (!known.includes(key)) problems.push(`${key}: not a ${scheme} setting (known: ${known.slice(1).join(', ')})`);
  }
  const extra = scheme === 'hmac' ? hmacSettings(c, problems) : {};
  if (problems.length > 0) throw configError(`${scheme} verifier config`, problems);
  const secrets = c.secrets as string[];
  const keys = secrets.map((s) => (scheme === 'standard-webhooks' ? standardWebhooksKey(s)! : Buffer.from(s, 'utf8')));
  return { scheme, keys, toleranceSec: toleranceSec as number, nowMs: (c.nowMs as () => number) ?? Date.now, ...extra };
}

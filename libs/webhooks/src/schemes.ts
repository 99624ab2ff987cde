import { BusError } from '@bus/errors';
import { decodeSignature, header, hmac, matchesAny } from './hmac.js';
import type { RequestHeaders, Verifier, VerifierConfig, VerifyResult } from './types.js';

const reject = (reason: Extract<VerifyResult, { ok: false }>['reason'], detail: string): VerifyResult => ({ ok: false, reason, detail });

function configError(scheme: string, field: string, problem: string): BusError {
  return new BusError('WEBHOOK_CONFIG_INVALID', 'permanent', `${scheme} verifier: ${field} ${problem}`);
}

/** Checks a unix-seconds timestamp against the tolerance, both ways (old replays and far-future clocks). */
function checkTimestamp(raw: string | undefined, nowMs: number, toleranceSec: number): VerifyResult | number {
  if (!raw || !/^\d{1,12}$/.test(raw)) return reject('malformed_header', 'the timestamp is not unix seconds');
  const ts = Number(raw);
  const skew = Math.abs(nowMs / 1000 - ts);
  if (skew > toleranceSec) return reject('timestamp_outside_tolerance', `the signed timestamp is ${Math.round(skew)} s from now; at most ${toleranceSec} s is accepted`);
  return ts;
}

/** Which secret (index) produced one of the candidates, or -1. Every secret is tried. */
function firstMatching(keys: Buffer[], compute: (key: Buffer) => Buffer, candidates: Buffer[]): number {
  let found = -1;
  keys.forEach((key, i) => {
    if (matchesAny(compute(key), candidates) && found === -1) found = i;
  });
  return found;
}

function standardWebhooks(keys: Buffer[], c: Required<Pick<VerifierConfig, 'toleranceSec' | 'nowMs'>>) {
  return (headers: RequestHeaders, body: Buffer): VerifyResult => {
    const id = header(headers, 'webhook-id');
    const timestamp = header(headers, 'webhook-timestamp');
    const signature = header(headers, 'webhook-signature');
    if (!id || !timestamp || !signature) return reject('missing_header', 'webhook-id, webhook-timestamp and webhook-signature are all required');
    const ts = checkTimestamp(timestamp, c.nowMs(), c.toleranceSec);
    if (typeof ts !== 'number') return ts;
    const candidates = signature.split(' ')
      .map((s) => s.split(','))
      .filter(([v, sig]) => v === 'v1' && sig)
      .map(([, sig]) => decodeSignature(sig!, 'base64'))
      .filter((b): b is Buffer => !!b);
    if (candidates.length === 0) return reject('malformed_header', 'webhook-signature has no v1,<base64> entry');
    const i = firstMatching(keys, (k) => hmac('sha256', k, `${id}.${timestamp}.`, body), candidates);
    return i < 0 ? reject('signature_mismatch', 'no v1 signature matches any configured secret') : { ok: true, deliveryId: id, timestamp: ts, secretIndex: i };
  };
}

function stripe(keys: Buffer[], c: Required<Pick<VerifierConfig, 'toleranceSec' | 'nowMs'>>) {
  return (headers: RequestHeaders, body: Buffer): VerifyResult => {
    const sig = header(headers, 'stripe-signature');
    if (!sig) return reject('missing_header', 'Stripe-Signature is required');
    const pairs = sig.split(',').map((p) => p.split('=')).filter((p) => p.length === 2) as [string, string][];
    const t = pairs.find(([k]) => k === 't')?.[1];
    const candidates = pairs.filter(([k]) => k === 'v1').map(([, v]) => decodeSignature(v, 'hex')).filter((b): b is Buffer => !!b);
    if (!t || candidates.length === 0) return reject('malformed_header', 'Stripe-Signature needs t=<timestamp> and at least one v1=<hex>');
    const ts = checkTimestamp(t, c.nowMs(), c.toleranceSec);
    if (typeof ts !== 'number') return ts;
    const i = firstMatching(keys, (k) => hmac('sha256', k, `${t}.`, body), candidates);
    // Stripe's delivery id is the event id inside the body: the caller reads it from the payload
    return i < 0 ? reject('signature_mismatch', 'no v1 signature matches any configured secret') : { ok: true, timestamp: ts, secretIndex: i };
  };
}

function github(keys: Buffer[]) {
  return (headers: RequestHeaders, body: Buffer): VerifyResult => {
    const sig = header(headers, 'x-hub-signature-256');
    if (!sig) return reject('missing_header', 'X-Hub-Signature-256 is required');
    const candidate = sig.startsWith('sha256=') ? decodeSignature(sig.slice(7), 'hex') : undefined;
    if (!candidate) return reject('malformed_header', 'X-Hub-Signature-256 must be sha256=<hex>');
    const i = firstMatching(keys, (k) => hmac('sha256', k, body), [candidate]);
    return i < 0 ? reject('signature_mismatch', 'the signature matches no configured secret') : { ok: true, deliveryId: header(headers, 'x-github-delivery'), secretIndex: i };
  };
}

function generic(keys: Buffer[], c: Extract<VerifierConfig, { scheme: 'hmac' }> & Required<Pick<VerifierConfig, 'toleranceSec' | 'nowMs'>>) {
  const algorithm = c.algorithm ?? 'sha256';
  const encoding = c.encoding ?? 'hex';
  const template = c.signedPayload ?? '{body}';
  const [before, after] = template.split('{body}') as [string, string?];
  return (headers: RequestHeaders, body: Buffer): VerifyResult => {
    const raw = header(headers, c.header);
    if (!raw) return reject('missing_header', `${c.header} is required`);
    let timestamp = '';
    let ts: number | undefined;
    if (c.timestampHeader) {
      timestamp = header(headers, c.timestampHeader) ?? '';
      if (!timestamp) return reject('missing_header', `${c.timestampHeader} is required`);
      const checked = checkTimestamp(timestamp, c.nowMs(), c.toleranceSec);
      if (typeof checked !== 'number') return checked;
      ts = checked;
    }
    const prefix = c.prefix ?? '';
    const candidate = raw.startsWith(prefix) ? decodeSignature(raw.slice(prefix.length), encoding) : undefined;
    if (!candidate) return reject('malformed_header', `${c.header} must be ${prefix}<${encoding} signature>`);
    const head = before.replaceAll('{timestamp}', timestamp);
    const tail = (after ?? '').replaceAll('{timestamp}', timestamp);
    const i = firstMatching(keys, (k) => hmac(algorithm, k, head, body, tail), [candidate]);
    if (i < 0) return reject('signature_mismatch', 'the signature matches no configured secret');
    return { ok: true, secretIndex: i, ...(ts !== undefined ? { timestamp: ts } : {}), ...(c.deliveryIdHeader ? { deliveryId: header(headers, c.deliveryIdHeader) } : {}) };
  };
}

/** Standard Webhooks secrets are `whsec_<base64>`; the key is the decoded bytes. */
function standardKey(secret: string, index: number): Buffer {
  const b64 = secret.startsWith('whsec_') ? secret.slice(6) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw configError('standard-webhooks', `secrets[${index}]`, 'must be whsec_<base64> (as the provider shows it)');
  return Buffer.from(b64, 'base64');
}

/**
 * A verifier for one source. Signatures are checked on the raw body bytes, against every
 * configured secret, in constant time. A bad configuration throws here, naming the field.
 */
export function createVerifier(config: VerifierConfig): Verifier {
  const scheme = config?.scheme;
  if (!['standard-webhooks', 'stripe', 'github', 'hmac'].includes(scheme)) throw configError(String(scheme), 'scheme', 'must be standard-webhooks, stripe, github or hmac');
  if (!Array.isArray(config.secrets) || config.secrets.length === 0 || config.secrets.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw configError(scheme, 'secrets', 'must list at least one non-empty secret');
  }
  const toleranceSec = config.toleranceSec ?? 300;
  if (!(toleranceSec > 0)) throw configError(scheme, 'toleranceSec', `must be > 0, got ${toleranceSec}`);
  const c = { toleranceSec, nowMs: config.nowMs ?? Date.now };
  let verify: (h: RequestHeaders, b: Buffer) => VerifyResult;
  if (config.scheme === 'standard-webhooks') verify = standardWebhooks(config.secrets.map(standardKey), c);
  else if (config.scheme === 'stripe') verify = stripe(config.secrets.map((s) => Buffer.from(s)), c);
  else if (config.scheme === 'github') verify = github(config.secrets.map((s) => Buffer.from(s)));
  else {
    if (!config.header || !/^[A-Za-z0-9-]+$/.test(config.header)) throw configError('hmac', 'header', 'must name the signature header');
    if (config.algorithm && !['sha256', 'sha512', 'sha1'].includes(config.algorithm)) throw configError('hmac', 'algorithm', 'must be sha256, sha512 or sha1');
    if (config.encoding && !['hex', 'base64'].includes(config.encoding)) throw configError('hmac', 'encoding', 'must be hex or base64');
    if (config.signedPayload && !config.signedPayload.includes('{body}')) throw configError('hmac', 'signedPayload', 'must contain {body}');
    if (config.signedPayload?.includes('{timestamp}') && !config.timestampHeader) throw configError('hmac', 'timestampHeader', 'is required when signedPayload uses {timestamp}');
    verify = generic(config.secrets.map((s) => Buffer.from(s)), { ...config, ...c });
  }
  return { scheme, verify: ({ headers, body }) => verify(headers, body) };
}

/** Headers for an outbound webhook signed with Standard Webhooks (the bus's own webhook connector). */
export function signStandardWebhook(o: { secret: string; id: string; timestampSec: number; body: string | Buffer }) {
  const sig = hmac('sha256', standardKey(o.secret, 0), `${o.id}.${o.timestampSec}.`, o.body).toString('base64');
  return { 'webhook-id': o.id, 'webhook-timestamp': String(o.timestampSec), 'webhook-signature': `v1,${sig}` };
}

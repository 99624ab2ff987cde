import { createVerifier } from '@bus/webhooks';
import type { Headers } from './intake.js';
import { type AnySource, secretsOf } from './source.js';

export type Verified =
  | { ok: true; deliveryId?: string; secretIndex: number }
  | { ok: false; reason: string; detail: string };

export interface SourceVerifier {
  verify(headers: Headers, body: Buffer): Verified;
}

/** Binds a source's scheme to its secrets from the environment (missing secrets fail start-up). */
export function verifierFor(source: AnySource, env: NodeJS.ProcessEnv): SourceVerifier {
  const verifier = createVerifier({
    ...source.verification,
    secrets: secretsOf(source, env),
    toleranceSec: source.toleranceSec ?? 300,
  } as Parameters<typeof createVerifier>[0]);
  return {
    verify(headers, body) {
      const r = verifier.verify({ headers, body });
      return r.ok ? { ok: true, deliveryId: r.deliveryId, secretIndex: r.secretIndex } : { ok: false, reason: r.reason, detail: r.detail };
    },
  };
}

/**
 * The delivery id a verified webhook of this source would carry, read from the headers
 * without checking any signature: for listed items (`receiveListed`), fetched by the bus
 * itself, so that they get the webhook's event id.
 */
export function unsignedDeliveryId(source: AnySource, headers: Headers): string | undefined {
  const v = source.verification;
  const name = v.scheme === 'standard-webhooks' ? 'webhook-id' : v.scheme === 'github' ? 'x-github-delivery' : v.scheme === 'hmac' ? v.deliveryIdHeader : undefined;
  if (!name) return undefined;
  const lower = name.toLowerCase();
  const key = Object.keys(headers).find((k) => k.toLowerCase() === lower);
  const value = key === undefined ? undefined : headers[key];
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text?.trim() ? text : undefined;
}

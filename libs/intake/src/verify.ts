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

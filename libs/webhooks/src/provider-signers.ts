// check-imports: test support
// Test support (not exported): every signature here is made by a provider's own library,
// never by this package, so a test cannot pass by agreeing with our own mistake.
import assert from 'node:assert/strict';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import type { RejectReason, VerifyResult } from './types.js';

/** The fixed clock of the tests, unix ms. */
export const NOW_MS = 1_764_000_000_000;
export const NOW_SEC = NOW_MS / 1000;
export const nowMs = () => NOW_MS;

/** A JSON event body as a provider would send it. */
export const eventBody = Buffer.from(JSON.stringify({ id: 'evt_1', type: 'customer.created', data: { object: { id: 'cus_1', name: 'Zoë' } } }));

/** A Standard Webhooks secret (`whsec_<base64>`) made from a label. */
export function whsec(label: string): string {
  return `whsec_${Buffer.from(label.padEnd(32, '.')).toString('base64')}`;
}

/** Headers the standardwebhooks library produces for `body` (it signs the body's UTF-8 text). */
export function standardHeaders(secret: string, body: Buffer, o: { atMs?: number; id?: string } = {}): Record<string, string> {
  const at = new Date(o.atMs ?? NOW_MS);
  const id = o.id ?? 'msg_1';
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, body.toString('utf8')),
  };
}

/** A `Stripe-Signature` value from the stripe library (`t=…,v1=…`). */
export function stripeSignature(secret: string, body: Buffer, timestampSec = NOW_SEC): string {
  return Stripe.webhooks.generateTestHeaderString({ payload: body.toString('utf8'), secret, timestamp: timestampSec });
}

/** The `v1=` hex value alone of a stripe-library signature. */
export function stripeV1(secret: string, body: Buffer, timestampSec = NOW_SEC): string {
  const v1 = stripeSignature(secret, body, timestampSec).split(',').find((p) => p.startsWith('v1='));
  assert.ok(v1, 'the stripe library produced no v1 value');
  return v1.slice('v1='.length);
}

/** An `X-Hub-Signature-256` value (`sha256=<hex>`) from @octokit/webhooks-methods. */
export function githubSignature(secret: string, body: Buffer): Promise<string> {
  return octokitSign(secret, body.toString('utf8'));
}

/** The reason of a result, or 'ok': one value to compare in assertions. */
export function outcome(r: VerifyResult): RejectReason | 'ok' {
  return r.ok ? 'ok' : r.reason;
}

/**
 * Asserts a refusal for `reason`, and that its detail quotes none of the secrets or
 * signatures given (nor any long hex/base64 run that could be one).
 */
export function assertRefused(r: VerifyResult, reason: RejectReason, ...sensitive: string[]): void {
  assert.equal(outcome(r), reason, r.ok ? 'accepted' : r.detail);
  if (r.ok) return;
  for (const s of sensitive) assert.ok(!r.detail.includes(s), `detail quotes a secret or signature: ${r.detail}`);
  assert.doesNotMatch(r.detail, /[A-Za-z0-9+/=]{20,}/, 'detail holds something signature-like');
}

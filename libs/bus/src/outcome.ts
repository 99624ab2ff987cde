import type { FailureClass } from '@bus/errors';

/**
 * What a handler decided about one message. consume() alone turns it into
 * ack / nak(delay) / dead-letter + term, so every service handles messages the same way.
 */
export type Outcome =
  | { kind: 'done' }
  | { kind: 'retry'; delayMs: number; reason: string; failureClass?: FailureClass; status?: number; code?: string }
  | { kind: 'defer'; delayMs: number; reason: string }
  | { kind: 'dead-letter'; failureClass: FailureClass; code: string; reason: string; details?: Record<string, unknown> };

/** The message is handled: acknowledge it. */
export const done = (): Outcome => ({ kind: 'done' });

/** Try again no sooner than `delayMs` (nak with delay); the attempt is recorded in the history. */
export const retryAfter = (
  delayMs: number,
  reason: string,
  extra: { failureClass?: FailureClass; status?: number; code?: string } = {},
): Outcome => ({ kind: 'retry', delayMs: Math.max(0, Math.round(delayMs)), reason, ...extra });

/**
 * Not now, and not a failure (an earlier version is still on its way, the entity is busy,
 * the connector is paused or its breaker open): nak(delay) without adding to the history.
 */
export const defer = (delayMs: number, reason: string): Outcome => ({ kind: 'defer', delayMs: Math.max(0, Math.round(delayMs)), reason });

/** Give up: the message goes to the DLQ with its reason and history, and is terminated. */
export const deadLetter = (
  failureClass: FailureClass,
  code: string,
  reason: string,
  details?: Record<string, unknown>,
): Outcome => ({ kind: 'dead-letter', failureClass, code, reason, ...(details ? { details } : {}) });

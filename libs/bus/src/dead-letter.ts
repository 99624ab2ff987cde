import type { FailureClass } from '@bus/errors';
import { decode, encode } from '@bus/envelope';
import type { AttemptRecord } from '@bus/retry';
import { z } from 'zod';

/** The wire shape of an attempt record (the type and the rules live in @bus/retry). */
const AttemptRecordSchema: z.ZodType<AttemptRecord> = z.object({
  attempt: z.number().int(),
  failureClass: z.enum(['transient', 'business', 'permanent', 'ambiguous', 'ok']),
  status: z.number().int().optional(),
  code: z.string().optional(),
  message: z.string().optional(),
  delayMs: z.number().optional(),
  durationMs: z.number().optional(),
  at: z.string(),
});

/**
 * A DLQ entry: what failed, why, every attempt, and the original message byte for byte,
 * so a replay puts back exactly what was there.
 */
export const DeadLetter = z.object({
  id: z.string(),
  stage: z.string(),
  connector: z.string().optional(),
  failureClass: z.enum(['transient', 'business', 'permanent', 'ambiguous']),
  code: z.string(),
  reason: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
  attempts: z.number().int(),
  history: z.array(AttemptRecordSchema),
  deadLetteredAt: z.string(),
  correlationId: z.string().optional(),
  original: z.object({
    stream: z.string(),
    seq: z.number().int(),
    subject: z.string(),
    msgId: z.string().optional(),
    headers: z.record(z.string(), z.string()),
    data: z.custom<Uint8Array>((v) => v instanceof Uint8Array, "must be bytes"),
  }),
  /** How many times this entry was replayed before; a replay that fails again comes back with +1. */
  replays: z.number().int().default(0),
});
export type DeadLetter = z.infer<typeof DeadLetter> & { failureClass: FailureClass };

export function encodeDeadLetter(entry: DeadLetter): Uint8Array {
  return encode(entry);
}

export function decodeDeadLetter(bytes: Uint8Array): DeadLetter {
  return DeadLetter.parse(decode(bytes)) as DeadLetter;
}

/** Header a replayed message carries, so its next dead-letter counts the replays. */
export const REPLAYS_HEADER = 'Bus-Replays';

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

/**
 * Header a replayed message carries: its DLQ entry's stage, connector, attempt count and
 * history (JSON, bounded like the history: 50 records of at most 1 000 characters each), so
 * that if it fails again its new entry holds the earlier attempts and the new ones, numbered on.
 */
export const PRIOR_HISTORY_HEADER = 'Bus-Prior-History';

/** Header a replayed message carries: the Nats-Msg-Id of the message first dead-lettered, so every replay's id derives from it. */
export const ORIGINAL_MSG_ID_HEADER = 'Bus-Original-Msg-Id';

const PriorHistory = z.object({
  stage: z.string(),
  connector: z.string().optional(),
  attempts: z.number().int().min(0),
  history: z.array(AttemptRecordSchema),
});
/** What a replayed message remembers of the attempts before its replay. */
export type PriorHistory = { stage: string; connector?: string; attempts: number; history: AttemptRecord[] };

/** The PRIOR_HISTORY_HEADER value for a replay of `entry`. */
export function priorHistoryHeader(entry: DeadLetter): string {
  const prior: PriorHistory = { stage: entry.stage, connector: entry.connector, attempts: entry.attempts, history: entry.history };
  return JSON.stringify(prior); // JSON escapes CR/LF, so it is a valid header value
}

/**
 * The prior history a message carries, when it was replayed from a DLQ entry of this stage
 * and connector (a transform replay goes back to EVENTS, where other connectors see it too:
 * theirs is not this history). Undefined when absent, for another consumer, or unreadable.
 */
export function readPriorHistory(value: string | undefined, stage: string, connector: string | undefined): PriorHistory | undefined {
  if (!value) return undefined;
  let parsed: ReturnType<typeof PriorHistory.safeParse>;
  try {
    parsed = PriorHistory.safeParse(JSON.parse(value));
  } catch {
    return undefined;
  }
  if (!parsed.success || parsed.data.stage !== stage || parsed.data.connector !== connector) return undefined;
  return parsed.data as PriorHistory;
}

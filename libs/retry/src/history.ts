import { BusError, type FailureClass } from '@bus/errors';

/** One attempt in a message's life (docs/architecture.md → Failure classes: attempt, class, status, delay, time). Travels with the message. */
export interface AttemptRecord {
  /** 1-based number of this attempt, counting every attempt ever made (also those dropped from the history). */
  attempt: number;
  /** How it ended: a failure class, or 'ok'. */
  failureClass: FailureClass | 'ok';
  /** HTTP status, when the target answered. */
  status?: number;
  /** Stable error code, e.g. DELIVER_TRANSIENT. */
  code?: string;
  /** What happened; cut to MAX_RECORD_MESSAGE_CHARS by appendAttempt. */
  message?: string;
  /** The wait before the next attempt, ms. */
  delayMs?: number;
  /** When the attempt ended: ISO-8601 UTC. */
  at: string;
  /** How long the attempt took, ms. */
  durationMs?: number;
}

/** A message's attempts, oldest first, at most MAX_HISTORY_RECORDS (the newest). */
export type RetryHistory = readonly AttemptRecord[];

/** Records kept per message by default; older ones are dropped but still counted (attemptsMade). */
export const MAX_HISTORY_RECORDS = 50;
/** A record's message is cut to this many characters, so a target's 1 MB error page is not stored 50 times. */
export const MAX_RECORD_MESSAGE_CHARS = 1_000;

/** Attempts made so far: the last record's attempt number (0 for an empty history), however many were dropped. */
export function attemptsMade(history: RetryHistory): number {
  return history.at(-1)?.attempt ?? 0;
}

/**
 * A new history with `record` appended (the input is not changed), keeping the newest
 * `maxRecords` (default MAX_HISTORY_RECORDS, whole >= 1). `record.attempt` defaults to
 * attemptsMade(history) + 1; when given it must be above the last one, or BusError
 * `RETRY_HISTORY_INVALID` (permanent) is thrown: numbering is how the total survives trimming.
 */
export function appendAttempt(
  history: RetryHistory,
  record: Omit<AttemptRecord, 'attempt'> & { attempt?: number },
  maxRecords: number = MAX_HISTORY_RECORDS,
): AttemptRecord[] {
  const invalid = (what: string) => new BusError('RETRY_HISTORY_INVALID', 'permanent', `appendAttempt: ${what}; a bug in the caller`);
  if (!Number.isInteger(maxRecords) || maxRecords < 1) throw invalid(`maxRecords must be a whole number >= 1, got ${maxRecords}`);
  const last = attemptsMade(history);
  const attempt = record.attempt ?? last + 1;
  if (!Number.isInteger(attempt) || attempt <= last) throw invalid(`attempt must be a whole number above the last one (${last}), got ${attempt}`);
  const message =
    record.message !== undefined && record.message.length > MAX_RECORD_MESSAGE_CHARS
      ? `${record.message.slice(0, MAX_RECORD_MESSAGE_CHARS - 1)}…`
      : record.message;
  const next = [...history, { ...record, attempt, ...(message === undefined ? {} : { message }) }];
  return next.length > maxRecords ? next.slice(next.length - maxRecords) : next;
}

/**
 * `earlier` followed by `later`, with `later` numbered on after attemptsMade(earlier) (its own
 * numbers are taken as 1-based within its round), keeping the newest `maxRecords`. For a message
 * retried again after a replay: each round counts its own attempts (a fresh policy budget),
 * while the whole history — and the total — travels on.
 */
export function continueHistory(earlier: RetryHistory, later: RetryHistory, maxRecords: number = MAX_HISTORY_RECORDS): AttemptRecord[] {
  const offset = attemptsMade(earlier);
  let out = [...earlier];
  for (const r of later) out = appendAttempt(out, { ...r, attempt: offset + r.attempt }, maxRecords);
  return out.length > maxRecords ? out.slice(out.length - maxRecords) : out;
}

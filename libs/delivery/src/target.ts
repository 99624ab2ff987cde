import type { DeliveryCommand } from '@bus/connectors';
import { BusError, type FailureClass } from '@bus/errors';
import type { RateLimitInfo } from '@bus/retry';

/** What one attempt at the target came to. */
export interface CallResult {
  ok: boolean;
  failureClass: FailureClass | 'ok';
  /** HTTP status, when the target speaks HTTP. */
  status?: number;
  retryAfterMs?: number;
  /** What the target said about its quota (RateLimit-* / X-RateLimit-* headers), when it did. */
  rateLimit?: RateLimitInfo;
  /** Short and log-safe: status and a little of the answer, never headers or secrets. */
  detail: string;
  durationMs: number;
  /** True when nothing reached the target (no token, no time left): the attempt cannot have landed. */
  notSent?: boolean;
}

/** A record as the target holds it: its key, the version it was written from, its fields. */
export interface TargetRecord {
  key: { type: string; id: string };
  version: number;
  fields: Record<string, unknown>;
}

export interface CallOptions {
  /** Hard limit for the whole call (connect, send, answer). */
  timeoutMs: number;
  /** Extra request headers (an OAuth2 bearer token); targets that are not HTTP ignore them. */
  headers?: Record<string, string>;
}

/** One page of a target's records, in key order. */
export interface TargetPage {
  records: TargetRecord[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

/**
 * A kind of target system. `apply` is one attempt for one command and never throws for
 * the target's sake: every outcome is a classified CallResult. `lookup` and `list` are
 * optional reads: deliver uses lookup after an ambiguous attempt (did it land?), reconcile
 * uses both to compare the bus's view with the target's. Reads throw a TargetReadError.
 */
export interface Target {
  readonly kind: string;
  apply(cmd: DeliveryCommand, o: CallOptions): Promise<CallResult>;
  lookup?(key: { type: string; id: string }, o: CallOptions): Promise<TargetRecord | undefined>;
  /** Several records of one type at once (reconcile compares a page at a time); absent ones are left out. */
  lookupMany?(type: string, ids: string[], o: CallOptions): Promise<TargetRecord[]>;
  list?(type: string, page: { after?: string; limit: number }, o: CallOptions): Promise<TargetPage>;
  /** Releases connections (a database pool); called when deliver stops. */
  close?(): Promise<void>;
}

/** A read from a target failed; its class says whether trying again can help. */
export class TargetReadError extends BusError {
  /** @param status the target's HTTP status, when it answered one (401: renew the token). */
  constructor(failureClass: FailureClass, message: string, readonly status?: number) {
    super('TARGET_READ_FAILED', failureClass, message);
  }
}

/** Milliseconds since `started` (performance.now()), whole. */
export const elapsedMs = (started: number) => Math.round(performance.now() - started);

import { BusError } from '@bus/errors';
import type { VerifierConfig } from '@bus/webhooks';
import type { z } from 'zod';
import { parseHorizon } from './dedup.js';

/** What a source's extractors see: the verified request and its parsed payload. */
export interface ExtractContext<P> {
  payload: P;
  headers: Record<string, string | string[] | undefined>;
  /** The delivery id the signature scheme carries (Standard Webhooks, GitHub), if any. */
  signedDeliveryId?: string;
}

type WithoutSecrets<T> = T extends unknown ? Omit<T, 'secrets' | 'toleranceSec' | 'nowMs'> : never;

/** How a source's requests are authenticated: a verifier's settings without secrets (they come from `secretsEnv`). */
export type Verification = WithoutSecrets<VerifierConfig>;

/**
 * A webhook source as typed data: its scheme, where its secrets come from, and where the
 * delivery id, event type, entity, version and time are read. Checked at start-up.
 */
export interface SourceDefinition<S extends z.ZodType = z.ZodType> {
  /** URL segment (`/webhooks/<name>`) and subject token. */
  name: string;
  verification: Verification;
  /** Environment variable holding the secret(s); comma-separated for rotation (old,new). */
  secretsEnv: string;
  /** Allowed clock difference for signed timestamps. Default 300 s. */
  toleranceSec?: number;
  /** Largest body accepted. Default 1 MiB. */
  maxBodyBytes?: number;
  /** The payload's schema. A payload failing it is quarantined (DLQ), never lost. */
  schema: S;
  deliveryId(ctx: ExtractContext<z.infer<S>>): string | undefined;
  eventType(ctx: ExtractContext<z.infer<S>>): string;
  entity(ctx: ExtractContext<z.infer<S>>): { type: string; id: string };
  /** Monotonic per entity. */
  version(ctx: ExtractContext<z.infer<S>>): number;
  /**
   * `sequence` (default): versions count 1, 2, 3 … per entity, so strict ordering waits for a missing one.
   * `stamp`: the version is a timestamp (Stripe's `created`): strict applies in increasing order after a
   * short reorder window and never waits for numbers in between.
   */
  versionKind?: 'sequence' | 'stamp';
  occurredAt(ctx: ExtractContext<z.infer<S>>): string | Date | undefined;
  /** The event's `data`: what its `type@schemaVersion` schema describes. Default: the whole payload. */
  data?(ctx: ExtractContext<z.infer<S>>): Record<string, unknown>;
  /** Schema version of `data`. Default 1. */
  schemaVersion?: number;
  /** How to list what the source sent (for missed webhooks). Default none: the source is not polled. */
  changes?: SourceChanges;
  /**
   * How long after the first delivery the provider may send it again (its retry schedule, manual
   * redelivery, the `changes` listing's look-back): a retry within it is refused as a duplicate
   * past the EVENTS stream's 1-hour window. `'3d'` (default), `'36h'`, `'90m'`, `'30s'`, or
   * `'none'` for a source that never redelivers (the stream window alone). At most the DEDUP
   * stream's max age (7 days by default). Costs 8 bytes of ingest memory and DEDUP disk per delivery.
   */
  dedupHorizon?: string;
}

export type AnySource = SourceDefinition<z.ZodType>;

/**
 * One change as a source's listing API reports it: the payload as the webhook would have
 * carried it, and the headers its extractors read (the delivery id for Standard Webhooks
 * `webhook-id`, GitHub `x-github-delivery`, an hmac `deliveryIdHeader`; GitHub's
 * `x-github-event`). Same payload, same headers → the same event id as the webhook.
 */
export interface ListedItem {
  payload: unknown;
  headers?: Record<string, string>;
}

/** What a listing call gets besides the checkpoint. */
export interface ChangesContext {
  env: NodeJS.ProcessEnv;
  /** Use this, not the global fetch: tests and callers substitute it. */
  fetch: typeof fetch;
  /** Aborted when the run is stopped (shutdown, lost lease); pass it to fetch. */
  signal: AbortSignal;
  /** Items per page to ask for (`changes.pageSize`). */
  limit: number;
}

/** One page of a listing: `checkpoint` resumes right after it; `more: false` when nothing newer is left. */
export interface ChangesPage {
  items: ListedItem[];
  checkpoint: string;
  more: boolean;
}

/** How to list a source's changes since a checkpoint, so missed webhooks are found (`pollSourceChanges`). */
export interface SourceChanges {
  /** One page after `checkpoint` (undefined: the first run; the source decides where history starts). Throw on failure: the checkpoint stays. */
  list(checkpoint: string | undefined, ctx: ChangesContext): Promise<ChangesPage>;
  /** How often to poll, for the scheduler. Default 300 s; 10 s to 1 day. */
  everySec?: number;
  /** Items per page asked for (`ctx.limit`). Default 100; 1 to 1000. */
  pageSize?: number;
  /** Environment variables the listing needs (API key, base URL); while one is unset, polls are skipped with a log line naming it. */
  requiredEnv?: string[];
}

/** Declares a source; a wrong definition fails here, at start-up, naming source and field. */
export function defineSource<S extends z.ZodType>(def: SourceDefinition<S>): SourceDefinition<S> {
  const problems: string[] = [];
  if (!/^[a-z][a-z0-9_-]{0,40}$/.test(def.name ?? '')) problems.push(`name must be lower-case letters, digits, _ or - (got "${def.name}")`);
  if (!/^[A-Z][A-Z0-9_]*$/.test(def.secretsEnv ?? '')) problems.push(`secretsEnv must name an environment variable (got "${def.secretsEnv}")`);
  if (def.toleranceSec !== undefined && !(def.toleranceSec > 0 && def.toleranceSec <= 86_400)) problems.push('toleranceSec must be between 1 and 86400');
  if (def.maxBodyBytes !== undefined && !(def.maxBodyBytes >= 1024 && def.maxBodyBytes <= 64 * 1024 * 1024)) problems.push('maxBodyBytes must be between 1 KiB and 64 MiB');
  for (const fn of ['deliveryId', 'eventType', 'entity', 'version', 'occurredAt'] as const) {
    if (typeof def[fn] !== 'function') problems.push(`${fn} must be a function reading it from the request`);
  }
  if (def.versionKind !== undefined && !['sequence', 'stamp'].includes(def.versionKind)) problems.push('versionKind must be sequence or stamp');
  if (def.data !== undefined && typeof def.data !== 'function') problems.push('data must be a function reading the event data from the payload');
  if (!['standard-webhooks', 'stripe', 'github', 'hmac'].includes(def.verification?.scheme)) problems.push('verification.scheme must be standard-webhooks, stripe, github or hmac');
  if (def.changes !== undefined) problems.push(...changesProblems(def.changes));
  const horizon = parseHorizon(def.dedupHorizon);
  if (horizon === undefined || horizon > 30 * 86_400_000) problems.push(`dedupHorizon must be 'none' or a whole number of s, m, h or d up to 30d (got "${def.dedupHorizon}")`);
  if (problems.length) {
    throw new BusError('SOURCE_INVALID', 'permanent', `source "${def.name}" is invalid: ${problems.join('; ')}`);
  }
  return Object.freeze(def);
}

function changesProblems(c: SourceChanges): string[] {
  const problems: string[] = [];
  if (typeof c !== 'object' || c === null) return ['changes must be an object { list, everySec?, pageSize?, requiredEnv? }'];
  if (typeof c.list !== 'function') problems.push('changes.list must be a function (checkpoint, ctx) → { items, checkpoint, more }');
  if (c.everySec !== undefined && !(Number.isInteger(c.everySec) && c.everySec >= 10 && c.everySec <= 86_400)) problems.push('changes.everySec must be a whole number from 10 to 86400');
  if (c.pageSize !== undefined && !(Number.isInteger(c.pageSize) && c.pageSize >= 1 && c.pageSize <= 1000)) problems.push('changes.pageSize must be a whole number from 1 to 1000');
  if (c.requiredEnv !== undefined && !(Array.isArray(c.requiredEnv) && c.requiredEnv.every((v) => /^[A-Z][A-Z0-9_]*$/.test(v)))) {
    problems.push('changes.requiredEnv must list environment variable names');
  }
  return problems;
}

/** The secrets of a source from the environment; missing ones fail start-up with what to set. */
export function secretsOf(source: AnySource, env: NodeJS.ProcessEnv): string[] {
  const secrets = (env[source.secretsEnv] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (secrets.length === 0) {
    throw new BusError('SOURCE_SECRET_MISSING', 'permanent',
      `source "${source.name}" has no secret: set ${source.secretsEnv} (comma-separated to rotate: old,new)`);
  }
  return secrets;
}

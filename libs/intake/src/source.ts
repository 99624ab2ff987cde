import type { Envelope } from '@bus/envelope';
import { BusError } from '@bus/errors';
import type { SourceApi, SourceClient } from './source-api.js';
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
   * The source sends at least one event this often (seconds, may be fractional). Silent for twice as long, it is
   * quiet: `bus_source_silent`, an audit record, `bus streams status`, and its listing is polled at once. Default:
   * learned from its events over the last days (reconcile's watcher); a source with too few is not watched.
   */
  expectEverySec?: number;
  /** The source's API (base URL, auth, rate limit, retries): one client for the listing and refetch. */
  api?: SourceApi;
  /** How to read an entity's current record from the source (`api` required): transform refetches before mapping. */
  refetch?: SourceRefetch;
  /**
   * How long after the first delivery the provider may send it again (its retry schedule, manual
   * redelivery, the `changes` listing's look-back): a retry within it is refused as a duplicate
   * past the EVENTS stream's 1-hour window. `'3d'` (default), `'36h'`, `'90m'`, `'30s'`, or
   * `'none'` for a source that never redelivers (the stream window alone). At most the DEDUP
   * stream's max age (7 days by default). Costs 8 bytes of ingest memory and DEDUP disk per delivery.
   */
  dedupHorizon?: string;
}

/** What transform gives a refetch: the event it is for, the source's one client, and a signal. */
export interface RefetchContext {
  event: Envelope;
  client: SourceClient;
  signal: AbortSignal;
}

/** The record as the source holds it now: the event `data` its type's schema describes, and its version (from the record). */
export type Refetched = { data: Record<string, unknown>; version: number } | { gone: true; version: number };

/**
 * Refetch: the authoritative record instead of the event's payload (thin events carry only an id; a late event's
 * payload can be stale). `fetch` reads it through `ctx.client` and says its version, or that it is gone (a delete).
 * Transform refetches for subscriptions that ask (`refetch` on the subscription), or for every event when `always`.
 */
export interface SourceRefetch {
  fetch(entity: { type: string; id: string }, ctx: RefetchContext): Promise<Refetched>;
  /** Every event of this source is refetched before mapping (thin events). Default false: only subscriptions with `refetch`. */
  always?: boolean;
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
  /** The source's one client (its `api`: auth, pace, retries, failure classes), when it declares one. */
  client?: SourceClient;
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
  if (def.expectEverySec !== undefined && !(typeof def.expectEverySec === 'number' && def.expectEverySec >= 1 && def.expectEverySec <= 7 * 86_400)) {
    problems.push('expectEverySec must be a number of seconds from 1 to 604800 (7 days)');
  }
  if (def.api !== undefined && !/^[A-Z][A-Z0-9_]*$/.test(def.api?.baseUrlEnv ?? '')) problems.push('api.baseUrlEnv must name an environment variable');
  if (def.api?.auth?.kind === 'bearer' && !/^[A-Z][A-Z0-9_]*$/.test(def.api.auth.env ?? '')) problems.push('api.auth.env must name an environment variable');
  if (def.refetch !== undefined) {
    if (typeof def.refetch?.fetch !== 'function') problems.push('refetch.fetch must be a function (entity, ctx) → { data, version } | { gone, version }');
    if (!def.api) problems.push('refetch needs api: the source\'s client it reads the record with');
  }
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

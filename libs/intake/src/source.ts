import { BusError } from '@bus/errors';
import type { VerifierConfig } from '@bus/webhooks';
import type { z } from 'zod';

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
  occurredAt(ctx: ExtractContext<z.infer<S>>): string | Date | undefined;
  /** The event's `data`: what its `type@schemaVersion` schema describes. Default: the whole payload. */
  data?(ctx: ExtractContext<z.infer<S>>): Record<string, unknown>;
  /** Schema version of `data`. Default 1. */
  schemaVersion?: number;
}

export type AnySource = SourceDefinition<z.ZodType>;

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
  if (def.data !== undefined && typeof def.data !== 'function') problems.push('data must be a function reading the event data from the payload');
  if (!['standard-webhooks', 'stripe', 'github', 'hmac'].includes(def.verification?.scheme)) problems.push('verification.scheme must be standard-webhooks, stripe, github or hmac');
  if (problems.length) {
    throw new BusError('SOURCE_INVALID', 'permanent', `source "${def.name}" is invalid: ${problems.join('; ')}`);
  }
  return Object.freeze(def);
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

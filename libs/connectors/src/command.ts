import { z } from 'zod';

/**
 * One delivery command: what a connector must do at its target for one event. It carries
 * everything deliver needs without the event: the key, the fields it may write, which of
 * them the source owns, and the event's identity for ordering and idempotency.
 */
export const DeliveryCommand = z.object({
  /** `<connector>:<event id>[:<n>]`; also Nats-Msg-Id and the idempotency key. */
  id: z.string().min(1),
  connector: z.string().min(1),
  /** `upsert`, `delete`, or a custom action the connector knows. */
  action: z.string().regex(/^[a-z][a-z0-9_-]*$/),
  /** The target record's key. */
  target: z.object({ type: z.string().min(1), id: z.string().min(1) }),
  /** What to write; never a target-owned field. */
  fields: z.record(z.string(), z.unknown()),
  /** Fields whose source value always wins at the target. */
  sourceOwned: z.array(z.string()),
  /** The source entity and version: per-entity ordering runs on these. */
  entity: z.object({ type: z.string(), id: z.string() }),
  version: z.number().int().min(1),
  /** sequence (1, 2, 3 …: a gap can be seen and is waited for) or stamp (a timestamp: applied in increasing order). Absent = sequence. */
  versionKind: z.enum(['sequence', 'stamp']).optional(),
  event: z.object({ id: z.string(), type: z.string(), source: z.string(), occurredAt: z.string(), schemaVersion: z.number().int() }),
  correlationId: z.string(),
  idempotencyKey: z.string(),
  /**
   * Set by reconcile: this command repairs a difference found at the target, so it is
   * applied even where the target is recorded as having this version already (someone
   * deleted or edited the record behind the bus's back). Never older over newer.
   */
  repair: z.object({ runId: z.string(), kind: z.string() }).optional(),
  /**
   * Records this command needs at the same connector first (source entities, e.g. `{type: 'contact', id: 'c-1'}`):
   * deliver holds it until their commands are applied there, or dead-letters it naming the one missing.
   */
  needs: z.array(z.object({ type: z.string().min(1), id: z.string().min(1) })).max(20).optional(),
});
export type DeliveryCommand = z.infer<typeof DeliveryCommand>;

/** What a mapping returns: one command's target, action and fields; the rest is filled in. */
export interface MappedCommand {
  action: 'upsert' | 'delete' | (string & {});
  target: { type: string; id: string };
  fields?: Record<string, unknown>;
  /**
   * Records that must be at the target first: the source entities whose commands create them at this connector
   * (an order needs `{type: 'contact', id: contactId}`). See DeliveryCommand.needs; the connector sets how long to wait (`delivery.dependencies`).
   */
  needs?: { type: string; id: string }[];
}

/**
 * The headers every delivery command is published with (transform, reconcile repairs): routing and
 * tracing without decoding, and the entity version that `pendingVersions` (libs/ordering) reads.
 */
export function commandHeaders(cmd: DeliveryCommand, causationId?: string): Record<string, string> {
  return {
    'Bus-Correlation-Id': cmd.correlationId, ...(causationId ? { 'Bus-Causation-Id': causationId } : {}), 'Bus-Entity-Type': cmd.entity.type,
    'Bus-Entity-Id': cmd.entity.id, 'Bus-Entity-Version': String(cmd.version), 'Bus-Connector': cmd.connector,
  };
}

import { DateTime } from 'luxon';
import { z } from 'zod';

/** A subject token: the envelope's source, type parts and entity type end up in NATS subjects. */
const token = /^[A-Za-z0-9_-]+$/;
/** An id that is safe as `Nats-Msg-Id` and as a KV key part (provider ids: evt_…, msg_…, UUIDs). */
const idPattern = /^[A-Za-z0-9._:=-]+$/;
/** A dotted event type: subject tokens joined by dots. */
const dottedType = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const ID_MAX = 200;
const ENTITY_ID_MAX = 256;

// the common shape (what toISOString and luxon's toUTC().toISO() write) is checked without luxon: it is on every message's path
const isoUtcFast = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]00:00)$/;

export const IsoUtc = z.string().refine(
  (s) => {
    if (isoUtcFast.test(s)) return !Number.isNaN(Date.parse(s));
    const dt = DateTime.fromISO(s, { setZone: true });
    return dt.isValid && dt.offset === 0;
  },
  { message: 'must be an ISO-8601 timestamp in UTC, like 2026-01-31T12:00:00.000Z' },
);

const Id = z
  .string()
  .min(1, 'must not be empty')
  .max(ID_MAX, `must be at most ${ID_MAX} characters`)
  .regex(idPattern, 'may hold only letters, digits and . _ : = -');

export const EntityRef = z.object({
  type: z.string().regex(token, 'must be one subject token: letters, digits, _ or -'),
  id: z.string().min(1, 'must not be empty').max(ENTITY_ID_MAX, `must be at most ${ENTITY_ID_MAX} characters`),
});

/**
 * The one envelope every message on the bus carries (docs/architecture.md → The event envelope).
 * Unknown top-level keys are dropped rather than rejected, so a newer producer does not
 * break an older consumer.
 */
export const Envelope = z.object({
  /** Unique per event; doubles as `Nats-Msg-Id`, so a retried publish is stored once. */
  id: Id,
  /** Dotted event type, e.g. `order.created`; each part becomes a subject token. */
  type: z
    .string()
    .regex(dottedType, 'must be dotted subject tokens, like order.created'),
  /** Where the event came from: a webhook source or a publishing service. */
  source: z.string().regex(token, 'must be one subject token: letters, digits, _ or -'),
  entity: EntityRef,
  /** Monotonic per entity, assigned by the source; ordering and staleness use it. */
  version: z.number().int('must be an integer').min(1, 'must be >= 1').max(Number.MAX_SAFE_INTEGER),
  /**
   * What kind of number `version` is: `sequence` (1, 2, 3 … per entity; the default when absent) or
   * `stamp` (a timestamp such as Stripe's `created`: increasing, but a gap means nothing).
   */
  versionKind: z.enum(['sequence', 'stamp']).optional(),
  occurredAt: IsoUtc,
  /** One business action's id, kept across every event and delivery it causes. */
  correlationId: Id,
  /** The id of the event or request that caused this one; null for a first cause. */
  causationId: Id.nullable(),
  /** Version of `data`'s schema for this `type`. */
  schemaVersion: z.number().int('must be an integer').min(1, 'must be >= 1'),
  data: z.record(z.string(), z.unknown()),
});

export type Envelope<D extends Record<string, unknown> = Record<string, unknown>> = Omit<
  z.infer<typeof Envelope>,
  'data'
> & { data: D };
export type EntityRef = z.infer<typeof EntityRef>;

const ENVELOPE_KEYS = new Set(['id', 'type', 'source', 'entity', 'version', 'versionKind', 'occurredAt', 'correlationId', 'causationId', 'schemaVersion', 'data']);
const isId = (v: unknown): v is string => typeof v === 'string' && v.length >= 1 && v.length <= ID_MAX && idPattern.test(v);
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

/**
 * The envelope as it is, when it plainly passes {@link Envelope} with nothing for zod to strip or
 * convert; undefined otherwise (zod then decides, and names what is wrong). Every message on the
 * per-event path is checked: zod's parse costs ~2.5 µs per envelope (7 % of a rebuild's CPU), these
 * plain checks a fraction of it. A value accepted here is one zod accepts, equal to zod's output
 * (a property test holds the two together: change both or neither). The value itself is returned,
 * not a copy: for a freshly decoded message only.
 */
export function plainEnvelope(v: unknown): Envelope | undefined {
  if (!isPlainObject(v)) return undefined;
  for (const k in v) if (!ENVELOPE_KEYS.has(k)) return undefined; // zod would strip it
  const e = v as Record<string, unknown>;
  const entity = e.entity;
  if (!isPlainObject(entity)) return undefined;
  for (const k in entity) if (k !== 'type' && k !== 'id') return undefined;
  const ok = isId(e.id) && typeof e.type === 'string' && dottedType.test(e.type) && typeof e.source === 'string' && token.test(e.source)
    && typeof entity.type === 'string' && token.test(entity.type) && typeof entity.id === 'string' && entity.id.length >= 1 && entity.id.length <= ENTITY_ID_MAX
    && Number.isSafeInteger(e.version) && (e.version as number) >= 1
    && (!('versionKind' in e) || e.versionKind === 'sequence' || e.versionKind === 'stamp')
    && typeof e.occurredAt === 'string' && isoUtcFast.test(e.occurredAt) && !Number.isNaN(Date.parse(e.occurredAt))
    && isId(e.correlationId) && (e.causationId === null || isId(e.causationId))
    && Number.isSafeInteger(e.schemaVersion) && (e.schemaVersion as number) >= 1
    && isPlainObject(e.data);
  return ok ? (v as Envelope) : undefined;
}

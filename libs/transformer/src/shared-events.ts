import type { SchemaRegistry, Validation } from '@bus/connectors';
import { decodeEnvelope, type Envelope } from '@bus/envelope';

export interface SharedEventsOptions {
  schemas: SchemaRegistry;
  /** How many of this process's consumers take a message of this subject: its event is let go once each has had it. */
  takers: (subject: string) => number;
  /** Events kept for the other connectors' consumers (most recent). Default 256: more than the messages those consumers hold ahead. */
  size?: number;
}

/** Makes a decoded value read-only all the way down: the connectors' mappings share it. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Each connector has its own consumer on EVENTS (a broken connector holds up no other), so each
 * event reaches this process once per connector. It is decoded, checked against the envelope
 * schema and its data validated once, here, and the same read-only result serves every
 * connector: before, each consumer did all three (a third of transform's CPU per event, for two
 * connectors). Keyed by stream sequence, i.e. one stored message, which never changes; bounded.
 * What a mapping gets is frozen, so one connector's mapping cannot change what another's sees:
 * a mapping that writes into its input throws, and its event is dead-lettered as a mapping error.
 */
export function createSharedEvents(o: SharedEventsOptions) {
  const size = o.size ?? 256;
  // insertion order: oldest first; `left`: the consumers still to take it (a lagging one past `size` decodes its own)
  const bySeq = new Map<number, { length: number; env: Envelope; left: number }>();
  const validations = new WeakMap<Envelope, Validation>();
  return {
    /** The envelope of EVENTS message `seq` (on `subject`); throws (EnvelopeError) as decodeEnvelope does for bytes that are not one. */
    decode(data: Uint8Array, seq: number, subject: string): Envelope {
      const hit = bySeq.get(seq);
      if (hit && hit.length === data.length) {
        if (--hit.left <= 0) bySeq.delete(seq);
        return hit.env;
      }
      const env = deepFreeze(decodeEnvelope(data));
      const left = o.takers(subject) - 1;
      if (left > 0) {
        bySeq.set(seq, { length: data.length, env, left });
        if (bySeq.size > size) bySeq.delete(bySeq.keys().next().value as number);
      }
      return env;
    },
    /** The event's data against its type's schema (SchemaRegistry.validate), once per event. */
    validate(env: Envelope): Validation {
      let v = validations.get(env);
      if (!v) {
        v = deepFreeze(o.schemas.validate(env.type, env.schemaVersion, env.data));
        validations.set(env, v);
      }
      return v;
    },
  };
}
export type SharedEvents = ReturnType<typeof createSharedEvents>;

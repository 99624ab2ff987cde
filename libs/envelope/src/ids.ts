import { randomUUID } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

/**
 * A new event id: a UUIDv7, so ids sort by creation time, which keeps KV keys and
 * logs readable in order.
 */
export function newEventId(): string {
  return uuidv7();
}

/**
 * A new correlation id for a business action that starts here. Random (v4): nothing sorts
 * by it, and Node's randomUUID draws from a cached pool, so it is cheap on the ingest path.
 */
export function newCorrelationId(): string {
  return randomUUID();
}

import { randomFillSync, randomUUID } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

// uuid draws its 16 random bytes with one getRandomValues call per id (3 % of a rebuild's CPU): draw them 256 ids at a time
const POOL_IDS = 256;
const pool = new Uint8Array(16 * POOL_IDS);
let used = POOL_IDS;
/** The millisecond and counter of the last id (uuid's own state, kept here as we pass the random bytes in). */
const state = { msecs: Number.NEGATIVE_INFINITY, seq: 0 };

/**
 * A new event id: a UUIDv7, so ids sort by creation time, which keeps KV keys and
 * logs readable in order.
 */
export function newEventId(): string {
  if (used === POOL_IDS) {
    randomFillSync(pool);
    used = 0;
  }
  const random = pool.subarray(16 * used, 16 * ++used);
  // uuid keeps ids monotonic within a millisecond only when it draws the bytes itself: the same counter here
  const now = Date.now();
  if (now > state.msecs) {
    state.msecs = now;
    state.seq = ((random[6]! & 0x7f) << 24) | (random[7]! << 16) | (random[8]! << 8) | random[9]!; // uuid's v7Sequence
  } else {
    state.seq = (state.seq + 1) | 0;
    if (state.seq === 0) state.msecs++;
  }
  return uuidv7({ random, msecs: state.msecs, seq: state.seq });
}

/**
 * A new correlation id for a business action that starts here. Random (v4): nothing sorts
 * by it, and Node's randomUUID draws from a cached pool, so it is cheap on the ingest path.
 */
export function newCorrelationId(): string {
  return randomUUID();
}

import { BusError } from '@bus/errors';
import type { Bus } from '@bus/bus';

/**
 * Where a rebuild starts in EVENTS: `fromSeq` (clamped to what the stream still holds), the
 * first event stored at or after `sinceMs` — found by the server from a consumer's start
 * time, without reading the stream — or the first event.
 */
export async function startSeqOf(bus: Bus, o: { fromSeq?: number; sinceMs?: number }): Promise<number> {
  if (o.fromSeq !== undefined && o.sinceMs !== undefined) throw new BusError('PROJECTION_START_INVALID', 'business', 'give a start sequence or a start time, not both');
  const stream = bus.names.streams.events;
  const { state } = await bus.jsm.streams.info(stream);
  const first = state.messages === 0 ? state.last_seq + 1 : state.first_seq;
  if (o.fromSeq !== undefined) {
    if (!Number.isInteger(o.fromSeq) || o.fromSeq < 1) throw new BusError('PROJECTION_START_INVALID', 'business', `the start sequence must be a whole number from 1, got ${o.fromSeq}`);
    if (o.fromSeq > state.last_seq + 1) throw new BusError('PROJECTION_START_INVALID', 'business', `the start sequence ${o.fromSeq} is past the end of ${stream} (last sequence ${state.last_seq})`);
    return Math.max(o.fromSeq, first);
  }
  if (o.sinceMs === undefined) return first;
  if (!Number.isFinite(o.sinceMs)) throw new BusError('PROJECTION_START_INVALID', 'business', `the start time must be a time, got ${o.sinceMs}`);
  // an ordered consumer by start time is positioned by the server: delivered = the sequence before the first match
  const probe = await bus.js.consumers.get(stream, { opt_start_time: new Date(o.sinceMs).toISOString() });
  try {
    return Math.max((await probe.info(true)).delivered.stream_seq + 1, first);
  } finally {
    await probe.delete().catch(() => undefined);
  }
}

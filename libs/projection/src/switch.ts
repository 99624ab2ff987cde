import type { Bus } from '@bus/bus';
import type { Logger } from '@bus/observability';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { type ActiveGeneration, markReplaced, type RebuildCheckpoint, readActive, switchActive } from './generations.js';
import { PROJECTION_DURABLE } from './projector.js';

/*
 * Why no event is lost at the switch, whatever the timing.
 *
 * Two writers put events into the new generation: the rebuild (everything up to `end`, below)
 * and the live projector (everything it handles once it knows of the switch). The projector
 * writes an event into the generation it believes active, then reads the pointer — a read
 * *started after that write* and answered by the control bucket's stream leader — and if the
 * pointer moved, writes the event into the new generation too. So:
 *
 * - An event handed to a projector after the switch was acknowledged: the projector's pointer
 *   read starts later still, so it sees the switch (a leader read; a direct get could be
 *   answered by a replica that is behind on R3) and the event reaches the new generation.
 * - An event handed to a projector before the switch may have gone into the old generation only.
 *   It was stored before the switch, so its sequence is at most the stream's last sequence, and
 *   at most the projector consumer's last delivered one, both read after the switch. The final
 *   pass replays up to the higher of the two: it has the event.
 *
 * The final pass counts by sequence up to that end. (The bug this replaces: it stopped on the
 * pending count of the last fetch before the switch, often 0, so events stored between the
 * catch-up and the switch reached only the old generation.) Writes racing each other in the new
 * generation are harmless: every apply is a compare-and-set that keeps the maximum (decide).
 *
 * Chosen over "the projector writes into both generations while a rebuild switches": that needs
 * a second pointer state, and its end is a switch of its own with the same question.
 */

/**
 * Makes the rebuilt generation active (compare-and-set on the pointer as read, from the leader, just
 * before) and notes on the old bucket that it is replaced. Returns the generation it replaced, or
 * undefined when the pointer already named this generation (a rebuild resumed after its switch).
 */
export async function switchToRebuilt(bus: Bus, ckpt: RebuildCheckpoint, log: Logger, beforeSwitch?: () => void | Promise<void>): Promise<number | undefined> {
  const current = await readActive(bus);
  if (!current || current.value.generation === ckpt.generation) return undefined;
  const previous = current.value.generation;
  await beforeSwitch?.();
  const next: ActiveGeneration = { generation: ckpt.generation, bucket: ckpt.bucket, since: new Date().toISOString(), previous, by: 'rebuild' };
  await switchActive(bus, next, current.revision);
  await markReplaced(bus, current.value, ckpt.generation, log);
  log.info({ generation: ckpt.generation, previous, seq: ckpt.lastSeq }, 'projection switched to the rebuilt generation');
  return previous;
}

/**
 * Where the final pass after the switch ends; call it after the switch was acknowledged. The
 * highest sequence a live projector may have been handed before it could see the switch: the
 * stream's last sequence (only stored events are handed out), or the projector consumer's last
 * delivered one should its node have answered ahead of the stream leader's.
 */
export async function endOfFinalPass(bus: Bus): Promise<number> {
  const stream = bus.names.streams.events;
  const [info, delivered] = await Promise.all([
    bus.jsm.streams.info(stream),
    bus.jsm.consumers.info(stream, PROJECTION_DURABLE).then((c) => c.delivered.stream_seq, (err: unknown) => {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return 0; // consumer not found: no projector ever ran
      throw err;
    }),
  ]);
  return Math.max(info.state.last_seq, delivered);
}

import type { ConsumerInfo, JetStreamManager } from '@nats-io/jetstream';
import { subjectMessages } from './read.js';

/** What a look for leftovers did: how many it removed, and the sequence up to which the consumer's subject is now clear. */
export interface LeftoversLook {
  removed: number;
  clearTo: number;
}

/**
 * Removes messages a work-queue consumer has already acknowledged but the stream still holds.
 * A work queue drops a message when it is acknowledged; nats-server 2.9 can lose that removal
 * when it is killed (SIGKILL, power loss) while its consumer state keeps the ack, so after the
 * restart the message stays stored forever, counted by no consumer, and looks pending to anything
 * that reads the stream (`pendingVersions`, reconcile, `bus streams status`). Acknowledged are:
 * everything at or below the ack floor, and — when nothing is in flight — everything delivered.
 * Reads from `fromSeq` (default the stream's start); one read when there is nothing to remove. nats-server 2.9 answers
 * that read by loading every block before the first match, so a caller that found a range clear starts after it
 * next time (consume() does, until the server may have lost removals again).
 */
export async function removeAcknowledgedLeftovers(jsm: JetStreamManager, stream: string, info: ConsumerInfo, fromSeq = 1): Promise<LeftoversLook> {
  const bound = info.num_ack_pending === 0 ? info.delivered.stream_seq : info.ack_floor.stream_seq;
  const filter = info.config.filter_subject || '>';
  let removed = 0;
  for await (const m of subjectMessages(jsm, stream, filter, { fromSeq })) {
    if (m.seq > bound) break;
    // at most 10,000 a look; one that could not be removed is read again next time
    if (removed >= 10_000 || !(await jsm.streams.deleteMessage(stream, m.seq, false).catch(() => false))) return { removed, clearTo: m.seq - 1 };
    removed++;
  }
  return { removed, clearTo: Math.max(bound, fromSeq - 1) };
}

import type { ConsumerInfo, JetStreamManager } from '@nats-io/jetstream';
import { subjectMessages } from './read.js';

/**
 * Removes messages a work-queue consumer has already acknowledged but the stream still holds.
 * A work queue drops a message when it is acknowledged; nats-server 2.9 can lose that removal
 * when it is killed (SIGKILL, power loss) while its consumer state keeps the ack, so after the
 * restart the message stays stored forever, counted by no consumer, and looks pending to anything
 * that reads the stream (`pendingVersions`, reconcile, `bus streams status`). Acknowledged are:
 * everything at or below the ack floor, and — when nothing is in flight — everything delivered.
 * Returns how many were removed; one read when there is nothing to remove.
 */
export async function removeAcknowledgedLeftovers(jsm: JetStreamManager, stream: string, info: ConsumerInfo): Promise<number> {
  const bound = info.num_ack_pending === 0 ? info.delivered.stream_seq : info.ack_floor.stream_seq;
  const filter = info.config.filter_subject || '>';
  let removed = 0;
  for await (const m of subjectMessages(jsm, stream, filter)) {
    if (m.seq > bound || removed >= 10_000) break;
    if (await jsm.streams.deleteMessage(stream, m.seq, false).catch(() => false)) removed++;
  }
  return removed;
}

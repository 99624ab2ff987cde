import type { ConsumerInfo, JetStreamManager, MsgRequest } from '@nats-io/jetstream';

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
  for (let seq = 1; removed < 10_000; ) {
    const m = await jsm.streams.getMessage(stream, { next_by_subj: filter, seq } as unknown as MsgRequest);
    if (!m || m.seq > bound) break;
    if (await jsm.streams.deleteMessage(stream, m.seq, false).catch(() => false)) removed++;
    seq = m.seq + 1;
  }
  return removed;
}

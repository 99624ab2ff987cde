import type { Bus } from './connect.js';
import { type DeadLetter, ORIGINAL_MSG_ID_HEADER, PRIOR_HISTORY_HEADER, priorHistoryHeader, REPLAYS_HEADER } from './dead-letter.js';

/**
 * Puts a DLQ entry of a stream stage (transform, deliver) back on its original subject, byte for byte, with the replay
 * counted and its history carried, then deletes the entry — what `bus dlq replay` does for those stages, for code that
 * replays without the CLI (deliver replays the commands dead-lettered for a dependency once it is delivered). The
 * Nats-Msg-Id `<first msg id>.replay<n>` is the same for two replays of one entry at once, so it is stored once.
 */
export async function republishDeadLetter(bus: Bus, seq: number, entry: DeadLetter): Promise<{ subject: string; duplicate: boolean }> {
  const replays = (entry.replays ?? 0) + 1;
  const first = entry.original.headers[ORIGINAL_MSG_ID_HEADER] ?? entry.original.msgId ?? `${entry.original.stream}.${entry.original.seq}`;
  const msgId = `${first}.replay${replays}`;
  const stored = await bus.publish(entry.original.subject, entry.original.data, { msgId, headers: {
    ...entry.original.headers, 'Nats-Msg-Id': msgId, [REPLAYS_HEADER]: String(replays), [ORIGINAL_MSG_ID_HEADER]: first,
    [PRIOR_HISTORY_HEADER]: priorHistoryHeader(entry),
  } });
  // someone replaying the same entry at the same time deleted it already: fine, it went through once
  await bus.jsm.streams.deleteMessage(bus.names.streams.dlq, seq).catch(async (err: Error) => {
    if (await bus.jsm.streams.getMessage(bus.names.streams.dlq, { seq })) throw err;
  });
  return { subject: entry.original.subject, duplicate: stored.duplicate };
}

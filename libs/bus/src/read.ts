import type { JetStreamManager, StoredMsg } from '@nats-io/jetstream';

/**
 * Reads a stream's stored messages in order, one at a time (bounded memory, any size),
 * skipping sequences that were deleted. For the CLI (DLQ, trace, status) and tests; not a
 * consumer: it acknowledges nothing and moves no cursor.
 */
export async function* readStream(
  jsm: JetStreamManager,
  stream: string,
  opts: { fromSeq?: number; subject?: (subject: string) => boolean } = {},
): AsyncGenerator<StoredMsg> {
  const info = await jsm.streams.info(stream);
  if (info.state.messages === 0) return;
  for (let seq = Math.max(opts.fromSeq ?? 0, info.state.first_seq); seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m && (!opts.subject || opts.subject(m.subject))) yield m;
  }
}

import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg, type MsgRequest, type StoredMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';

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

/**
 * The messages stored on one subject (or subject filter) of `stream`, in order from `fromSeq`, at most
 * `max`: one direct read each (STREAM.MSG.GET with next_by_subj, which nats-server 2.9 understands
 * though the client's type lacks it), so the cost follows the messages on the subject, not the
 * stream. For small per-subject reads (an entity's commands, a connector's dead letters); errors throw.
 */
export async function* subjectMessages(jsm: JetStreamManager, stream: string, subject: string, opts: { fromSeq?: number; max?: number } = {}): AsyncGenerator<StoredMsg> {
  let seq = opts.fromSeq ?? 1;
  for (let n = 0; n < (opts.max ?? Number.POSITIVE_INFINITY); n++) {
    const m = await jsm.streams.getMessage(stream, { next_by_subj: subject, seq } as unknown as MsgRequest);
    if (!m) return;
    yield m;
    seq = m.seq + 1;
  }
}

/**
 * The first sequence of `stream` stored at or after `sinceMs` (matching `filterSubject`, if
 * given), found by the server — a throwaway consumer with deliver_policy by_start_time — not
 * by reading messages: instant on any stream size. Undefined when nothing was stored since.
 */
export async function firstSeqSince(jsm: JetStreamManager, stream: string, sinceMs: number, filterSubject?: string): Promise<number | undefined> {
  const ci = await jsm.consumers.add(stream, {
    ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(sinceMs).toISOString(),
    inactive_threshold: nanos(60_000), mem_storage: true, num_replicas: 1, ...(filterSubject ? { filter_subject: filterSubject } : {}),
  });
  await jsm.consumers.delete(stream, ci.name).catch(() => undefined); // it would go by itself after a minute idle
  // a fresh consumer reports the sequence before its start position as delivered
  return ci.num_pending > 0 ? ci.delivered.stream_seq + 1 : undefined;
}

/** Where readRange starts and stops. */
export interface RangeOptions {
  /** First sequence to read. Default: the stream's first (or the one `sinceMs` points at). */
  fromSeq?: number;
  /** Start at the first message stored at or after this time (ms since epoch); with fromSeq, both bounds apply. */
  sinceMs?: number;
  /** Last sequence to read. Default: the stream's last sequence when reading starts (later messages are not read). */
  toSeq?: number;
  /** Only messages on this subject (one filter: nats-server 2.9). */
  filterSubject?: string;
}

/**
 * Reads a range of a stream in order, fast: an ordered consumer (no ack, flow controlled,
 * recreated by the client on a gap) starting where the range starts — by sequence, or by
 * time (`firstSeqSince`) — so a range at the end of a big stream costs no scan of its start.
 * Acknowledges nothing and moves no durable cursor. Ends at `toSeq` or at the stream's last
 * sequence when it started.
 */
export async function* readRange(js: JetStreamClient, jsm: JetStreamManager, stream: string, range: RangeOptions = {}): AsyncGenerator<JsMsg> {
  const info = await jsm.streams.info(stream);
  const last = Math.min(range.toSeq ?? Number.POSITIVE_INFINITY, info.state.last_seq);
  if (info.state.messages === 0) return;
  let start = Math.max(range.fromSeq ?? 1, info.state.first_seq, 1);
  if (range.sinceMs !== undefined) {
    const since = await firstSeqSince(jsm, stream, range.sinceMs, range.filterSubject);
    if (since === undefined) return;
    start = Math.max(start, since);
  }
  if (start > last) return;
  const consumer = await js.consumers.get(stream, { opt_start_seq: start, ...(range.filterSubject ? { filter_subjects: range.filterSubject } : {}) });
  try {
    if ((await consumer.info(true)).num_pending === 0) return;
    const messages = await consumer.consume({ max_messages: 256 });
    try {
      for await (const m of messages) {
        if (m.seq > last) break;
        if (range.sinceMs === undefined || m.info.timestampNanos / 1e6 >= range.sinceMs) yield m;
        if (m.seq >= last || m.info.pending === 0) break;
      }
    } finally {
      await messages.close().catch(() => undefined);
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}

import type { BusMetrics, Logger } from '@bus/observability';
import type { Names } from '@bus/streams';
import type { JetStreamManager, MsgRequest } from '@nats-io/jetstream';

/** One DLQ subject (`dlq.<stage>.<connector>`): how many entries, and its oldest. */
export interface DlqSubjectStats {
  subject: string;
  stage: string;
  /** `-` where the stage has none (ingest: the source is the connector). */
  connector: string;
  messages: number;
  /** Stream sequence of the oldest entry, when it could be read. */
  oldestSeq?: number;
  /** When the oldest entry was stored (ms since epoch), when it could be read. */
  oldestAtMs?: number;
}

/**
 * Entries and the oldest entry per stage and connector, with cheap calls: one STREAM.INFO
 * with `subjects_filter` (per-subject counts, nats-server 2.9+) and one message get by
 * `next_by_subj` per non-empty subject — never a scan of the DLQ.
 */
export async function dlqStats(jsm: JetStreamManager, names: Names): Promise<DlqSubjectStats[]> {
  const stream = names.streams.dlq;
  const info = await jsm.streams.info(stream, { subjects_filter: names.subjects.all.dlq });
  const root = names.subjects.all.dlq.slice(0, -1); // `[prefix.]dlq.`
  const out: DlqSubjectStats[] = [];
  for (const [subject, messages] of Object.entries(info.state.subjects ?? {})) {
    if (!subject.startsWith(root) || messages <= 0) continue;
    const [stage = '-', ...rest] = subject.slice(root.length).split('.');
    const s: DlqSubjectStats = { subject, stage, connector: rest.join('.') || '-', messages };
    // the type of getMessage's query lags the API: 2.9 takes next_by_subj (+ seq to start from)
    const oldest = await jsm.streams.getMessage(stream, { next_by_subj: subject, seq: info.state.first_seq } as unknown as MsgRequest).catch(() => null);
    if (oldest) Object.assign(s, { oldestSeq: oldest.seq, oldestAtMs: Date.parse(oldest.timestamp) });
    out.push(s);
  }
  return out.sort((a, b) => a.subject.localeCompare(b.subject));
}

export interface DlqWatch {
  /** Reads the DLQ now and updates the gauges (a refresh in progress is shared, never doubled). */
  refresh(): Promise<void>;
  stop(): void;
}

/**
 * Keeps `bus_dlq_messages` and `bus_dlq_oldest_age_seconds` (per stage and connector) current:
 * read at once, then every `intervalMs` (default 15 000; 0 = only on refresh()). A subject that
 * emptied reads 0. A failed read keeps the last figures and is logged at debug: the DLQ stream
 * being unreachable is already the `jetstream` readiness check's business.
 */
export function watchDlq(o: { jsm: JetStreamManager; names: Names; metrics: BusMetrics; log: Logger; intervalMs?: number }): DlqWatch {
  const seen = new Set<string>();
  let running: Promise<void> | undefined;
  const read = async () => {
    const stats = await dlqStats(o.jsm, o.names);
    const now = Date.now();
    const present = new Set<string>();
    for (const s of stats) {
      const labels = { stage: s.stage, connector: s.connector };
      present.add(JSON.stringify(labels));
      o.metrics.dlqMessages.set(labels, s.messages);
      o.metrics.dlqOldestAgeSeconds.set(labels, s.oldestAtMs === undefined ? 0 : Math.max(0, (now - s.oldestAtMs) / 1000));
    }
    for (const key of seen) {
      if (present.has(key)) continue;
      const labels = JSON.parse(key) as { stage: string; connector: string };
      o.metrics.dlqMessages.set(labels, 0);
      o.metrics.dlqOldestAgeSeconds.set(labels, 0);
    }
    for (const key of present) seen.add(key);
  };
  const refresh = () => {
    running ??= read()
      .catch((err: Error) => o.log.debug({ err: err.message }, 'could not read the DLQ for its metrics; keeping the last figures'))
      .finally(() => (running = undefined));
    return running;
  };
  const intervalMs = o.intervalMs ?? 15_000;
  void refresh();
  const timer = intervalMs > 0 ? setInterval(() => void refresh(), intervalMs) : undefined;
  timer?.unref();
  return { refresh, stop: () => clearInterval(timer) };
}

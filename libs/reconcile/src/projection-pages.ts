import type { Bus } from '@bus/bus';
import { type ProjectedEntity, readActive } from '@bus/projection';
import { DeliverPolicy } from '@nats-io/jetstream';

/**
 * The active projection in pages, from a bucket stream sequence on, with each page's last
 * sequence: a run's checkpoint. An ordered consumer reads one pass, values included, in
 * bounded memory. Entries written after the run started may or may not be seen (the next
 * run sees them); an entry rewritten meanwhile can come twice — comparing is idempotent.
 */
export async function* projectionPages(bus: Bus, o: { afterSeq: number; pageSize: number; source?: string }): AsyncGenerator<{ entries: Array<{ entry: ProjectedEntity; seq: number }>; lastSeq: number }> {
  const active = await readActive(bus);
  if (!active) return;
  const bucket = active.value.bucket;
  const c = await bus.js.consumers.get(`KV_${bucket}`, {
    filter_subjects: o.source ? `$KV.${bucket}.${o.source}.>` : `$KV.${bucket}.>`,
    ...(o.afterSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: o.afterSeq + 1 } : {}),
  });
  try {
    let pending = (await c.info(true)).num_pending;
    while (pending > 0) {
      const msgs = await c.fetch({ max_messages: Math.min(pending, o.pageSize), expires: 5_000 });
      const entries: Array<{ entry: ProjectedEntity; seq: number }> = [];
      let lastSeq = 0;
      for await (const m of msgs) {
        pending = m.info.pending;
        lastSeq = m.seq;
        const op = m.headers?.get('KV-Operation');
        if (op !== 'DEL' && op !== 'PURGE' && m.data.length > 0) entries.push({ entry: m.json<ProjectedEntity>(), seq: m.seq });
      }
      if (lastSeq === 0) pending = (await c.info()).num_pending;
      else yield { entries, lastSeq };
    }
  } finally {
    await c.delete().catch(() => undefined);
  }
}

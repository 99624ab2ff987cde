import { subjectMessages } from '@bus/bus';
import type { JetStreamManager } from '@nats-io/jetstream';

/** The header every delivery command carries with its source entity's version (set where commands are published). */
export const ENTITY_VERSION_HEADER = 'Bus-Entity-Version';

/**
 * "Is version N of this entity pending or in flight for this connector?" — the versions of the
 * commands stored for one entity and not yet acknowledged. DELIVERIES is a work queue: a command
 * stays in the stream until it is delivered, skipped or dead-lettered, so what is stored under the
 * entity's subject (`names.subjects.deliveriesOfEntity`) is exactly what is pending or in flight.
 * One request per stored command of the entity (usually none or one); read from the stream leader,
 * so it is consistent on a cluster. Deliver's gap wait, reconcile's settled rule and cross-record
 * dependencies use it.
 */
export async function pendingVersions(jsm: JetStreamManager, stream: string, entitySubject: string,
  opts: { max?: number; /** Stop reading at the first version this returns true for (it is the last one listed). */ stopAt?: (version: number) => boolean } = {}): Promise<number[]> {
  const versions: number[] = [];
  for await (const m of subjectMessages(jsm, stream, entitySubject, { max: opts.max ?? 1_000 })) {
    const v = Number(m.header.get(ENTITY_VERSION_HEADER));
    if (Number.isFinite(v) && v > 0) versions.push(v);
    if (opts.stopAt?.(v)) break;
  }
  return versions;
}

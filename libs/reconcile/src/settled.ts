import type { Bus } from '@bus/bus';
import { createOrderingGuard, type OrderingGuard, type OrderingMode, pendingVersions } from '@bus/ordering';
import type { ProjectedEntity } from '@bus/projection';
import { transformDurable } from '@bus/transformer';

export interface SettledOptions {
  bus: Bus;
  connector: string;
  /** The connector's ordering mode (the guard reads the versions bucket the same way whatever it is). */
  mode: OrderingMode;
  /**
   * Used only where transform's progress cannot be read (its consumer does not exist: transform
   * never ran for this connector): an entry younger than this is taken as still on its way.
   */
  settleMs: number;
  now?: () => number;
}

/** The guard's view of one entity: the version applied, and a live attempt's version. */
export type EntityDelivery = { applied: number; inFlight?: number; inDoubt?: number };

/**
 * The settled rule: reconcile judges an entity for a connector only when the bus has nothing on
 * its way to the target for it. `quiet(entry)` holds when, read in this order,
 * - the entity's latest projected version has left upstream: transform has handed its event on
 *   (its consumer's ack floor is past the event's EVENTS sequence; transform publishes the
 *   command before it acks the event), or deliver recorded that version (or a newer one) as
 *   applied (the versions bucket, read only when transform's floor does not answer), or — only
 *   where transform's consumer does not exist — the projection entry is older than `settleMs`;
 *   and then
 * - no command of the entity is pending or in flight in DELIVERIES (`pendingVersions`: DELIVERIES
 *   is a work queue, so a command stays until it is delivered, skipped or dead-lettered). A live
 *   attempt is one of these: deliver records the outcome (and drops the entity's lease) before
 *   it acknowledges the command.
 * So the latest version's command, if one was made, has been applied, skipped or dead-lettered.
 * Only entities that show a difference are checked: one stream message request (plus one per
 * command stored for the entity), one transform consumer info shared by the checks of a page
 * (cached; the floor only grows), and a KV get only where transform's floor does not answer.
 */
export function settledChecker(o: SettledOptions) {
  const { bus } = o;
  const now = o.now ?? Date.now;
  const durable = transformDurable(o.connector);
  /** Transform's floor: every event up to it (in its filter) is handed on; 'absent' when its consumer does not exist. */
  let floor: { at: number; value: number | 'absent' } | undefined;
  let guard: Promise<OrderingGuard> | undefined;

  async function readFloor(): Promise<number | 'absent'> {
    try {
      const i = await bus.jsm.consumers.info(bus.names.streams.events, durable);
      // nothing pending and nothing unacked: everything delivered to it so far is handed on
      return i.num_pending === 0 && i.num_ack_pending === 0 ? Math.max(i.ack_floor.stream_seq, i.delivered.stream_seq) : i.ack_floor.stream_seq;
    } catch (err) {
      if ((err as { code?: unknown }).code === 10014 || /consumer not found/i.test((err as Error).message)) return 'absent';
      throw err;
    }
  }

  /** Whether transform has handed on the event at `seq`; the floor only grows, so a floor past it stays valid. */
  async function transformed(entry: ProjectedEntity): Promise<boolean> {
    const passes = (f: number | 'absent') => (f === 'absent' ? now() - Date.parse(entry.updatedAt) >= o.settleMs : f >= entry.seq);
    if (floor && floor.value !== 'absent' && passes(floor.value)) return true;
    // a floor short of the event is read again after 200 ms; a missing consumer after 1 s
    if (!floor || now() - floor.at > (floor.value === 'absent' ? 1_000 : 200)) floor = { at: now(), value: await readFloor() };
    return passes(floor.value);
  }

  async function delivery(entity: { type: string; id: string }): Promise<EntityDelivery> {
    guard ??= bus.kv(bus.names.kv.versions).then((kv) => createOrderingGuard({ kv, connector: o.connector, mode: o.mode }));
    return (await guard).state(entity);
  }

  return {
    /** Nothing upstream and nothing in DELIVERIES for this entity (read in that order). */
    async quiet(entry: ProjectedEntity): Promise<boolean> {
      if (!(await transformed(entry)) && (await delivery(entry.entity)).applied < entry.version) return false;
      const pending = await pendingVersions(bus.jsm, bus.names.streams.deliveries, bus.names.subjects.deliveriesOfEntity(o.connector, entry.entity), { max: 1 });
      return pending.length === 0;
    },
    /** What deliver recorded for the entity (versions bucket): applied, a live attempt's version, a version in doubt. */
    delivery,
  };
}
export type SettledChecker = ReturnType<typeof settledChecker>;

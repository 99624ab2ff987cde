import { type Bus, decodeDeadLetter, type DeadLetter, republishDeadLetter, subjectMessages } from '@bus/bus';
import type { DeliveryCommand } from '@bus/connectors';
import { BusError, describeError } from '@bus/errors';
import { isCasConflict } from '@bus/lease';
import type { Logger } from '@bus/observability';
import { appliedVersion, pendingVersions } from '@bus/ordering';
import { kvToken } from '@bus/streams';
import type { KV } from '@nats-io/kv';

type Key = { type: string; id: string };

/** The code of a command dead-lettered because a record it needs never arrived; its details name them (`needs`). */
export const DEPENDENCY_MISSING = 'DELIVER_DEPENDENCY_MISSING';
const show = (k: Key) => `${k.type}/${k.id}`;
/** `<connector>.waiting.<type>.<id>` in `bus_connectors`: commands were dead-lettered waiting for this record. */
export const waitingKey = (connector: string, need: Key) => `${connector}.waiting.${kvToken(need.type)}.${kvToken(need.id)}`;

export type DependencyCheck =
  | { kind: 'ready' }
  /** Held: nothing is sent, the entity lease is not taken; looked at again after delayMs. */
  | { kind: 'wait'; need: Key; why: string; delayMs: number }
  /** Give up: dead-letter the command (business), naming the record. */
  | { kind: 'missing'; need: Key; why: string };

export interface DependenciesOptions {
  bus: Bus;
  connector: string;
  /** How long a command waits for what it needs (time paused, with the circuit open or deliver down does not count; a replay starts again). */
  waitMs: number;
  log: Logger;
}

/**
 * Cross-record dependencies at one connector: a command that needs other records (`needs`) goes only once each is
 * applied at the target (the ordering guard's versions, read through appliedVersion); while one is pending, retrying or
 * in flight in DELIVERIES (pendingVersions), or not there yet, the command waits in the stream — up to `waitMs`. One
 * dead-lettered, or missing past the wait, dead-letters the command (business, DELIVER_DEPENDENCY_MISSING) and marks
 * it as waiting for that record; when the record is delivered later (a replay), the commands dead-lettered for it are
 * replayed (`afterDelivered`) and audited.
 */
export function createDependencies(o: DependenciesOptions) {
  const { bus, connector } = o;
  const log = o.log.child({ connector, component: 'dependencies' });
  let kvs: Promise<{ versions: KV; connectors: KV }> | undefined;
  const buckets = () => (kvs ??= Promise.all([bus.kv(bus.names.kv.versions), bus.kv(bus.names.kv.connectors)])
    .then(([versions, connectors]) => ({ versions, connectors }))
    .catch((err: unknown) => {
      kvs = undefined;
      throw err;
    }));

  /** "Not in the DLQ" per need, for a few seconds: commands waiting for a record not there yet do not each read the DLQ every second. */
  const notDeadLettered = new Map<string, number>();
  const NOT_DEAD_LETTERED_FOR_MS = 5_000;
  async function deadLettered(need: Key): Promise<{ seq: number; entry: DeadLetter } | undefined> {
    const k = show(need);
    const until = notDeadLettered.get(k);
    if (until !== undefined && until > Date.now()) return undefined;
    const found = await scanDlq(need);
    if (found) notDeadLettered.delete(k);
    else {
      if (notDeadLettered.size > 10_000) notDeadLettered.clear();
      notDeadLettered.set(k, Date.now() + NOT_DEAD_LETTERED_FOR_MS);
    }
    return found;
  }

  /** This connector's deliver dead letters, oldest first (at most 10,000 read). */
  const deadLetters = () => subjectMessages(bus.jsm, bus.names.streams.dlq, bus.names.subjects.dlq('deliver', connector), { max: 10_000 });

  /** The DLQ entry of a command of `need` at this connector, if one is there (any one will do). */
  async function scanDlq(need: Key): Promise<{ seq: number; entry: DeadLetter } | undefined> {
    for await (const m of deadLetters()) {
      const entry = decodeDeadLetter(m.data);
      const e = entry.original.headers;
      if (e['Bus-Entity-Type'] === need.type && e['Bus-Entity-Id'] === need.id) return { seq: m.seq, entry };
    }
    return undefined;
  }

  /**
   * Wait clocks per command, in memory, like the ordering guard's gap clocks: a clock not looked at for 5 s is
   * restarted (the connector was paused, its circuit open, deliver down, or the command moved to another process),
   * so only time spent waiting for the record counts; a restart makes the wait longer, never shorter.
   */
  const clocks = new Map<string, { since: number; lookedAt: number }>();
  const CLOCK_STALE_MS = 5_000;
  const waited = (cmd: DeliveryCommand, storedAtMs: number) => {
    const now = Date.now();
    let c = clocks.get(cmd.id);
    if (!c || now - c.lookedAt > CLOCK_STALE_MS) {
      if (clocks.size > 10_000) clocks.clear();
      // first look: from when it was stored, unless that was long ago (a backlog, an outage): then from now
      c = { since: !c && now - storedAtMs <= CLOCK_STALE_MS ? storedAtMs : now, lookedAt: now };
      clocks.set(cmd.id, c);
    }
    c.lookedAt = now;
    return now - c.since;
  };

  /** Is everything `cmd` needs at the target? Else: wait (how long), or give up (which record, why). */
  async function check(cmd: DeliveryCommand, storedAtMs: number): Promise<DependencyCheck> {
    const got = await decide(cmd, storedAtMs);
    if (got.kind !== 'wait') clocks.delete(cmd.id);
    return got;
  }
  async function decide(cmd: DeliveryCommand, storedAtMs: number): Promise<DependencyCheck> {
    const { versions } = await buckets();
    const waitedMs = waited(cmd, storedAtMs);
    for (const need of cmd.needs ?? []) {
      if ((await appliedVersion(versions, connector, need)) > 0) continue;
      const pending = await pendingVersions(bus.jsm, bus.names.streams.deliveries, bus.names.subjects.deliveriesOfEntity(connector, need), { max: 1 });
      if (pending.length === 0 && (await deadLettered(need))) {
        return { kind: 'missing', need, why: `its delivery to ${connector} was dead-lettered` };
      }
      if (waitedMs >= o.waitMs) {
        return { kind: 'missing', need, why: pending.length
          ? `it was still pending or retrying after ${Math.round(waitedMs / 1000)} s (dependencies.waitMs ${o.waitMs})`
          : `it had not reached ${connector} after ${Math.round(waitedMs / 1000)} s (dependencies.waitMs ${o.waitMs})` };
      }
      // a dependency in flight is usually done within a second; one still missing is looked at less often
      return { kind: 'wait', need, why: pending.length ? 'pending or in flight' : 'not there yet', delayMs: pending.length ? 250 : 1_000 };
    }
    return { kind: 'ready' };
  }

  /** Notes that `cmd` was dead-lettered waiting for `need`, so delivering `need` later replays it. */
  async function markWaiting(cmd: DeliveryCommand, need: Key): Promise<void> {
    const { connectors } = await buckets();
    const key = waitingKey(connector, need);
    for (let attempt = 0; attempt < 5; attempt++) {
      const e = await connectors.get(key);
      const had = e?.operation === 'PUT' && e.length ? (e.json() as { dependents: { id: string }[] }).dependents : [];
      const dependents = [...had.filter((d) => d.id !== cmd.id), { id: cmd.id, correlationId: cmd.correlationId, at: new Date().toISOString() }].slice(-1_000);
      const value = JSON.stringify({ need, dependents });
      try {
        if (e?.operation === 'PUT') await connectors.update(key, value, e.revision);
        else await connectors.create(key, value);
        return;
      } catch (err) {
        if (!isCasConflict(err)) throw err; // another dependent was marked meanwhile: read again; anything else is a real error
      }
    }
    throw new BusError('DELIVER_DEPENDENCY_MARK_BUSY', 'transient', `could not mark ${cmd.id} as waiting for ${show(need)} in ${bus.names.kv.connectors}: ` +
      'five other dependents were marked at the same moment; the command is handled again');
  }

  /**
   * `entity` was just delivered here: replays the commands dead-lettered waiting for it (found by the mark, then in the
   * DLQ by code and need), audits each, and removes the mark once all are through. Never throws (logged; the mark stays
   * and the next delivery of the entity tries again).
   */
  async function afterDelivered(entity: Key): Promise<number> {
    try {
      const { connectors } = await buckets();
      const key = waitingKey(connector, entity);
      const mark = await connectors.get(key);
      if (mark?.operation !== 'PUT' || mark.length === 0) return 0;
      const wanted = `${show(entity)}`;
      let replayed = 0;
      for await (const m of deadLetters()) {
        if (m.header?.get('Bus-Error-Code') && m.header.get('Bus-Error-Code') !== DEPENDENCY_MISSING) continue; // not decoded: not one of ours
        const entry = decodeDeadLetter(m.data);
        if (entry.code !== DEPENDENCY_MISSING || !(entry.details?.needs as string[] | undefined)?.includes(wanted)) continue;
        const r = await republishDeadLetter(bus, m.seq, entry);
        replayed++;
        const dependent = { type: entry.original.headers['Bus-Entity-Type'] ?? '?', id: entry.original.headers['Bus-Entity-Id'] ?? '?' };
        const reason = `${wanted} was delivered to ${connector}: ${show(dependent)}, dead-lettered waiting for it, is replayed (${r.duplicate ? 'already republished' : `republished to ${r.subject}`})`;
        log.info({ need: wanted, dependent: show(dependent), dlqSeq: m.seq, correlationId: entry.correlationId }, reason);
        bus.audit({ stage: 'deliver', outcome: 'dependent-replayed', correlationId: entry.correlationId ?? entry.id, connector, entity: dependent, reason,
          details: { need: wanted, dlqSeq: m.seq } });
      }
      // only if nobody marked another dependent meanwhile (it would be found on the next delivery of the entity)
      await connectors.delete(key, { previousSeq: mark.revision }).catch(() => undefined);
      return replayed;
    } catch (err) {
      log.warn({ err: describeError(err), need: show(entity) }, 'replaying the commands dead-lettered for this record failed; tried again when it is delivered next');
      return 0;
    }
  }

  return { check, markWaiting, afterDelivered };
}
export type Dependencies = ReturnType<typeof createDependencies>;

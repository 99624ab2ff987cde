import type { Bus } from '@bus/bus';
import { commandHeaders, type DeliveryCommand } from '@bus/connectors';
import { encode, Headers } from '@bus/envelope';

/** Where a repair comes from: the projection entry's event (id and EVENTS sequence). */
export interface RepairOrigin {
  eventId: string;
  /** EVENTS sequence of the event that set the entity's latest version. */
  seq: number;
}

/**
 * The correlation id of the event that set the entity's latest version, read from that event's
 * headers in EVENTS (one request, by sequence; only for repairs, which are rare). Undefined when
 * the event is gone (past EVENTS' max age) or the sequence holds another event.
 */
export async function originalCorrelationId(bus: Bus, origin: RepairOrigin): Promise<string | undefined> {
  try {
    const m = await bus.jsm.streams.getMessage(bus.names.streams.events, { seq: origin.seq });
    if (!m || m.header.get(Headers.MsgId) !== origin.eventId) return undefined;
    return m.header.get(Headers.CorrelationId) || undefined;
  } catch (err) {
    if ((err as { code?: unknown }).code === 10037 || /no message found/i.test((err as Error).message)) return undefined;
    throw err;
  }
}

/**
 * The command that repairs a difference: an ordinary command for the entity (so deliver's
 * ordering guard, idempotency, rate limit and audit apply as to any other), with a fresh
 * idempotency key (a new business action), the original event's correlation id, and the run
 * that decided it in `repair`.
 */
export function repairCommand(cmd: DeliveryCommand, o: { runId: string; kind: string; correlationId: string }): DeliveryCommand {
  const id = `${cmd.id}:repair:${o.runId}`;
  return { ...cmd, id, idempotencyKey: id, correlationId: o.correlationId, repair: { runId: o.runId, kind: o.kind } };
}

/**
 * Publishes a repair to DELIVERIES under the entity's subject with the headers every command
 * carries (so `pendingVersions` sees it: the next run finds it in flight, an older pending
 * version holds it back under strict), and audits `reconcile repair` under the original
 * correlation id: `bus trace <correlationId>` shows the repair, then its delivery.
 */
export async function publishRepair(bus: Bus, repair: DeliveryCommand, o: { reason: string; causationId?: string }): Promise<void> {
  const { subjects } = bus.names;
  await bus.publish(subjects.delivery(repair.connector, repair.target.type, repair.entity), encode(repair), {
    msgId: repair.id, headers: commandHeaders(repair, o.causationId ?? repair.event.id),
  });
  const record = {
    stage: 'reconcile', outcome: 'repair', correlationId: repair.correlationId, at: new Date().toISOString(), connector: repair.connector, eventId: repair.event.id,
    entity: repair.entity, version: repair.version, reason: o.reason, details: { ...repair.repair, repairId: repair.id, action: repair.action },
  };
  // one record per repair command (the event's own id would dedup two runs' repairs of one event into one)
  bus.audit(record, { msgId: `audit.reconcile.repair.${repair.id}` });
}

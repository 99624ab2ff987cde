import { type Connector, type DeliveryCommand, type SchemaRegistry, subscriptionsFor, toCommands } from '@bus/connectors';
import type { Envelope } from '@bus/envelope';
import type { ProjectedEntity } from '@bus/projection';

/**
 * What the connector would send for an entity's latest state: its mapping run on the
 * projection's entry, as transform runs it on the event. An upsert describes a record the
 * target should hold, a delete one it should not (the entity's latest event is a delete);
 * other actions describe no state and give nothing. An entity the connector does not take
 * (type, source, filter) gives nothing. Data that fails its schema, or a mapping that throws, gives nothing too:
 * transform dead-letters those, so no target should hold them. With `schemas`, the data is
 * validated (and drift dropped) exactly as transform does before mapping.
 */
export function expectedCommands(connector: Connector, entry: ProjectedEntity, runId: string, schemas?: SchemaRegistry): DeliveryCommand[] {
  const subs = subscriptionsFor(connector, { type: entry.eventType, source: entry.source, schemaVersion: 1 });
  const out: DeliveryCommand[] = [];
  for (const sub of subs) {
    const event: Envelope = {
      id: entry.eventId, type: entry.eventType, source: entry.source, entity: entry.entity, version: entry.version, occurredAt: entry.eventTime,
      correlationId: runId, causationId: entry.eventId, schemaVersion: sub.schemaVersion ?? 1, data: entry.fields,
    };
    const v = schemas?.validate(entry.eventType, sub.schemaVersion ?? 1, entry.fields);
    if (v?.kind === 'invalid') continue;
    const data = v?.data ?? entry.fields;
    try {
      if (sub.filter && !sub.filter(data, event)) continue;
      out.push(...toCommands(connector, sub, data, event).filter((c) => c.action === 'upsert' || c.action === 'delete'));
    } catch {
      // the mapping refuses this data: the event is in the DLQ for this connector, not a target difference
    }
  }
  return out;
}

export const targetKey = (t: { type: string; id: string }) => `${t.type}/${t.id}`;

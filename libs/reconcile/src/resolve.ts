import { BusError } from '@bus/errors';
import type { Bus } from '@bus/bus';
import type { Connector, SchemaRegistry } from '@bus/connectors';
import { getEntity } from '@bus/projection';
import { expectedCommands } from './expected.js';
import { originalCorrelationId, publishRepair, repairCommand } from './repair.js';
import { type ReportItem, reportStore, type Resolution } from './report.js';

/**
 * Settles a flagged difference, audited: `source` sends the source's state to the target
 * (a repair command through deliver); `target` accepts the target's state and `ignore`
 * leaves it — both stop the same difference (same versions) from being flagged again.
 */
export async function resolveItem(o: { bus: Bus; connectors: Connector[]; schemas?: SchemaRegistry; itemId: string; as: Resolution; by: string }): Promise<ReportItem> {
  const store = reportStore(o.bus);
  const found = await store.item(o.itemId);
  if (!found) throw new BusError('RECONCILE_ITEM_NOT_FOUND', 'business', `no report item ${o.itemId}; see the ids in: bus reconcile report`);
  const { item, key } = found;
  if (item.resolution) throw new BusError('RECONCILE_ITEM_SETTLED', 'business', `item ${o.itemId} was already settled as ${item.resolution.as} by ${item.resolution.by} at ${item.resolution.at}`);
  if (o.as === 'source') {
    const connector = o.connectors.find((c) => c.name === item.connector);
    if (!connector) throw new BusError('RECONCILE_UNKNOWN_CONNECTOR', 'business', `item ${o.itemId} is of connector "${item.connector}", which this bus does not run`);
    const entry = item.entity && (await getEntity(o.bus, item.entity.source, item.entity.type, item.entity.id));
    if (!entry) throw new BusError('RECONCILE_NOTHING_TO_SEND', 'business', `the sources have no entity for ${item.target.type} ${item.target.id}: nothing to send. Settle it with --target or --ignore, or remove it at the target by hand`);
    const cmd = expectedCommands(connector, entry, item.runId, o.schemas).find((c) => c.target.type === item.target.type && c.target.id === item.target.id);
    if (!cmd) throw new BusError('RECONCILE_NOTHING_TO_SEND', 'business', `the source's entity no longer maps to ${item.target.type} ${item.target.id} for ${connector.name}; settle it with --target or --ignore`);
    const correlationId = (await originalCorrelationId(o.bus, { eventId: entry.eventId, seq: entry.seq })) ?? item.runId;
    const repair = repairCommand(cmd, { runId: `${item.runId}-resolved`, kind: `resolved-${item.kind}`, correlationId });
    // a person chose the source: its state goes even over a newer version at the target
    await publishRepair(o.bus, { ...repair, version: Math.max(repair.version, item.targetVersion ?? 0) }, { reason: `${item.kind} settled as source by ${o.by} (item ${item.id})` });
  }
  const settled: ReportItem = { ...item, resolution: { as: o.as, by: o.by, at: new Date().toISOString() } };
  await store.saveResolvedItem(key, settled);
  o.bus.audit({ stage: 'reconcile', outcome: `resolved-${o.as}`, correlationId: item.runId, connector: item.connector, entity: item.target,
    reason: `${item.kind} settled as ${o.as} by ${o.by}`, details: { itemId: item.id } });
  return settled;
}

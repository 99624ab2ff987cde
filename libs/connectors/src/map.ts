import type { Envelope } from '@bus/envelope';
import type { DeliveryCommand, MappedCommand } from './command.js';
import type { Connector, Subscription } from './connector.js';

/**
 * Applies ownership to a mapped command: target-owned fields are removed (never written
 * by an update), and the fields the source owns are listed so the target side lets them win.
 */
export function applyOwnership(connector: Connector, fields: Record<string, unknown>): { fields: Record<string, unknown>; sourceOwned: string[] } {
  const { targetOwned, sourceOwned } = connector.ownership;
  const kept = Object.fromEntries(Object.entries(fields).filter(([k]) => !targetOwned.includes(k)));
  const owned = sourceOwned.length ? sourceOwned.filter((f) => f in kept) : Object.keys(kept);
  return { fields: kept, sourceOwned: owned };
}

/** Runs one subscription's mapping and builds the full delivery commands. Throws what the mapping throws. */
export function toCommands(connector: Connector, sub: Subscription, data: Record<string, unknown>, event: Envelope): DeliveryCommand[] {
  const mapped = sub.map(data, event);
  const list: MappedCommand[] = mapped === null ? [] : Array.isArray(mapped) ? mapped : [mapped];
  return list.map((m, i) => {
    const id = list.length === 1 ? `${connector.name}:${event.id}` : `${connector.name}:${event.id}:${i}`;
    const { fields, sourceOwned } = applyOwnership(connector, m.fields ?? {});
    return {
      id, connector: connector.name, action: m.action, target: m.target, fields, sourceOwned,
      entity: event.entity, version: event.version, ...(event.versionKind === 'stamp' ? { versionKind: 'stamp' as const } : {}),
      event: { id: event.id, type: event.type, source: event.source, occurredAt: event.occurredAt, schemaVersion: event.schemaVersion },
      correlationId: event.correlationId,
      idempotencyKey: id, // stable per business action: the same on every attempt and replay
      ...(m.needs?.length ? { needs: m.needs.map((n) => ({ type: String(n.type), id: String(n.id) })) } : {}),
    };
  });
}

import { BusError } from '@bus/errors';
import type { Envelope } from '@bus/envelope';
import type { MappedCommand } from './command.js';
import type { SchemaRegistry } from './schemas.js';

/** One event type a connector takes, and how it becomes target commands. */
export interface Subscription {
  /** Event type, e.g. `order.created`. */
  type: string;
  /** Only events from this source; default any. */
  source?: string;
  /** Data schema version; default 1. */
  schemaVersion?: number;
  /** Keep only events this returns true for (on validated, read-only data); skipped ones are counted. */
  filter?: (data: Record<string, unknown>, event: Envelope) => boolean;
  /**
   * The target command(s); null/[] = nothing to do. A throw is a business error for this event and connector.
   * `data` and `event` are read-only (transform shares them between connectors): build new objects, never write into them.
   */
  map: (data: Record<string, unknown>, event: Envelope) => MappedCommand | MappedCommand[] | null;
  /**
   * Map the source's current record, not the event's payload: transform reads it through the source's `refetch` first
   * (its version is the record's). `gone`: what to do when the source no longer has it (default: delete the target
   * record keyed like the entity).
   */
  refetch?: true | { gone?: (event: Envelope) => MappedCommand | MappedCommand[] | null };
}

/** Who owns which target field (docs/architecture.md → Connectors: a field owned by the target is never overwritten). */
export interface Ownership {
  /** Never written by an update (the target's people or system maintain them). */
  targetOwned?: string[];
  /** Always written: the source's value wins. Default: every mapped field not target-owned. */
  sourceOwned?: string[];
}

/** Settings the deliver service uses; carried here so one definition describes the connector. */
export interface DeliverySettings {
  ordering?: 'strict' | 'latest' | 'none';
  [setting: string]: unknown;
}

export interface ConnectorDefinition {
  /** Subject token: letters, digits, _ and -. */
  name: string;
  description?: string;
  subscribes: Subscription[];
  ownership?: Ownership;
  delivery?: DeliverySettings;
}

export type Connector = Readonly<ConnectorDefinition> & { readonly ownership: Required<Ownership> };

function fail(connector: string, field: string, problem: string): never {
  throw new BusError('CONNECTOR_INVALID', 'permanent', `connector "${connector}": ${field} ${problem}. Fix its definition; nothing was started.`);
}

/**
 * Declares a connector. Everything that can be checked is checked now — at start-up,
 * naming the connector and the field — never at the first event.
 */
export function defineConnector(def: ConnectorDefinition, schemas?: SchemaRegistry): Connector {
  const name = def?.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(name)) fail(String(name), 'name', 'must be 1–40 letters, digits, _ or -');
  if (!Array.isArray(def.subscribes) || def.subscribes.length === 0) fail(name, 'subscribes', 'must list at least one event type');
  def.subscribes.forEach((s, i) => {
    const at = `subscribes[${i}]`;
    if (typeof s.type !== 'string' || !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(s.type)) fail(name, `${at}.type`, 'must be a dotted event type like order.created');
    if (s.source !== undefined && !/^[A-Za-z0-9_-]+$/.test(s.source)) fail(name, `${at}.source`, 'must be a source name');
    if (typeof s.map !== 'function') fail(name, `${at}.map`, 'must be a function from the event to target command(s)');
    if (s.filter !== undefined && typeof s.filter !== 'function') fail(name, `${at}.filter`, 'must be a function');
    if (s.refetch !== undefined && s.refetch !== true && (typeof s.refetch !== 'object' || (s.refetch.gone !== undefined && typeof s.refetch.gone !== 'function'))) {
      fail(name, `${at}.refetch`, 'must be true or { gone?: (event) => command(s) }');
    }
    if (schemas && !schemas.has(s.type, s.schemaVersion ?? 1)) {
      fail(name, `${at}.type`, `has no schema ${s.type}@${s.schemaVersion ?? 1} (known: ${schemas.keys().join(', ') || 'none'})`);
    }
  });
  const targetOwned = def.ownership?.targetOwned ?? [];
  const sourceOwned = def.ownership?.sourceOwned ?? [];
  for (const f of targetOwned) if (sourceOwned.includes(f)) fail(name, `ownership.${f}`, 'is both target-owned and source-owned');
  const ordering = def.delivery?.ordering;
  if (ordering !== undefined && !['strict', 'latest', 'none'].includes(ordering)) fail(name, 'delivery.ordering', 'must be strict, latest or none');
  return Object.freeze({ ...def, ownership: Object.freeze({ targetOwned, sourceOwned }) });
}

/** The subscriptions of `connector` that take this event (type and source match). */
export function subscriptionsFor(connector: Connector, event: Pick<Envelope, 'type' | 'source' | 'schemaVersion'>): Subscription[] {
  return connector.subscribes.filter((s) => s.type === event.type && (!s.source || s.source === event.source));
}

/** Checks a set of connectors together: names are unique. */
export function checkConnectors(connectors: Connector[]): Connector[] {
  const seen = new Set<string>();
  for (const c of connectors) {
    if (seen.has(c.name)) fail(c.name, 'name', 'is used by two connectors');
    seen.add(c.name);
  }
  return connectors;
}

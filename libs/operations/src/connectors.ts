import type { Bus } from '@bus/bus';
import { BusError } from '@bus/errors';

export interface ConnectorState {
  connector: string;
  paused: boolean;
  reason?: string;
  /** Who paused or resumed it last (`cli`, `console:<token name>`), and when. */
  by?: string;
  at?: string;
  pending: number;
  ackPending: number;
  /** The last circuit change any deliver process reported, e.g. `open since 09:12:03 (host:pid)`. */
  circuit?: { state: string; at: string; by: string };
}

/** Each connector that has a deliver consumer: paused and why, and its queue. */
export async function connectorStates(bus: Bus): Promise<ConnectorState[]> {
  const kv = await bus.kv(bus.names.kv.connectors);
  const out: ConnectorState[] = [];
  for await (const c of bus.jsm.consumers.list(bus.names.streams.deliveries)) {
    if (!c.name.startsWith('deliver-')) continue;
    const connector = c.name.slice('deliver-'.length);
    const e = await kv.get(connector).catch(() => null);
    const state = e?.operation === 'PUT' && e.value.length ? (e.json() as { paused?: boolean; reason?: string; by?: string; at?: string }) : {};
    const circuit = await kv.get(`${connector}.circuit`).catch(() => null);
    out.push({ connector, paused: !!state.paused, reason: state.reason, by: state.by, at: state.at, pending: c.num_pending, ackPending: c.num_ack_pending,
      circuit: circuit?.operation === 'PUT' && circuit.value.length ? (circuit.json() as ConnectorState['circuit']) : undefined });
  }
  return out;
}

/**
 * The connectors this bus knows: the catalog's (the demo, or BUS_CATALOG's) and any with a
 * deliver consumer on the bus (a deliver process running another catalog).
 */
export async function knownConnectors(bus: Bus, catalogNames?: string[]): Promise<string[]> {
  // the catalog (and what it imports) only when asked: `bus trace` must not pay for it at start
  const names = new Set(catalogNames ?? (await (await import('@bus/catalog')).loadCatalog()).connectors.map((c) => c.name));
  for await (const c of bus.jsm.consumers.list(bus.names.streams.deliveries)) {
    if (c.name.startsWith('deliver-')) names.add(c.name.slice('deliver-'.length));
  }
  return [...names].sort();
}

/** Refuses (CLI_UNKNOWN_CONNECTOR, listing the known ones) a name that is no connector of this bus: a typo must not look like a pause. */
export async function assertKnownConnector(bus: Bus, connector: string, catalogNames?: string[]): Promise<void> {
  const known = await knownConnectors(bus, catalogNames);
  if (!known.includes(connector)) {
    throw new BusError('CLI_UNKNOWN_CONNECTOR', 'business', `no connector "${connector}"; known: ${known.join(', ') || 'none'}. Nothing was changed`);
  }
}

/**
 * Pauses or resumes a connector for every deliver process (they read it within seconds).
 * Callers taking a name from a person check it first (assertKnownConnector). `by` is
 * recorded with the state (default `cli`) and in the audit record (stage `connector`).
 */
export async function setPaused(bus: Bus, connector: string, paused: boolean, reason: string, by = 'cli'): Promise<void> {
  const at = new Date().toISOString();
  await (await bus.kv(bus.names.kv.connectors)).put(connector, JSON.stringify({ paused, reason, at, by }));
  bus.audit({ stage: 'connector', outcome: paused ? 'paused' : 'resumed', correlationId: `connector-${connector}-${Date.now()}`, connector, reason, by });
}

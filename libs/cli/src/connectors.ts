import type { Bus } from '@bus/bus';
import { loadCatalog } from '@bus/catalog';
import { BusError } from '@bus/errors';
import type { Command } from 'commander';
import { registerConnectorsAuth } from './connectors-auth.js';
import { printTable, withBus } from './context.js';
import { emit } from './output.js';

export interface ConnectorState {
  connector: string;
  paused: boolean;
  reason?: string;
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
    const state = e?.operation === 'PUT' && e.value.length ? (e.json() as { paused?: boolean; reason?: string }) : {};
    const circuit = await kv.get(`${connector}.circuit`).catch(() => null);
    out.push({ connector, paused: !!state.paused, reason: state.reason, pending: c.num_pending, ackPending: c.num_ack_pending,
      circuit: circuit?.operation === 'PUT' && circuit.value.length ? (circuit.json() as ConnectorState['circuit']) : undefined });
  }
  return out;
}

/**
 * The connectors this bus knows: the catalog's (the demo, or BUS_CATALOG's) and any with a
 * deliver consumer on the bus (a deliver process running another catalog).
 */
export async function knownConnectors(bus: Bus, catalogNames?: string[]): Promise<string[]> {
  const names = new Set(catalogNames ?? (await loadCatalog()).connectors.map((c) => c.name));
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
 * recorded with the state (default `cli`).
 */
export async function setPaused(bus: Bus, connector: string, paused: boolean, reason: string, by = 'cli'): Promise<void> {
  await (await bus.kv(bus.names.kv.connectors)).put(connector, JSON.stringify({ paused, reason, at: new Date().toISOString(), by }));
}

export function registerConnectors(program: Command): void {
  const c = program.command('connectors').description('connector state: running or paused (and why), queue');
  c.command('list').description('each connector: running or paused (and why), circuit, queue').option('--json').action(async (o: { json?: boolean }) => withBus(async (bus) => {
    const states = await connectorStates(bus);
    if (o.json) return emit(states);
    if (states.length === 0) return console.log('no deliver consumers yet (is deliver running?)');
    printTable(states.map((s) => ({ connector: s.connector, state: s.paused ? 'paused' : 'running', circuit: s.circuit ? `${s.circuit.state} since ${s.circuit.at.slice(11, 19)} (${s.circuit.by})` : 'closed',
      pending: s.pending, 'in flight': s.ackPending, why: s.reason ?? '' })));
  }));
  c.command('pause <connector>').description('stop delivering to a connector (commands wait in DELIVERIES); unknown names are refused').option('--reason <text>', 'shown in list and logs', 'paused by an operator')
    .action(async (name: string, o: { reason: string }) => withBus(async (bus) => {
      await assertKnownConnector(bus, name);
      await setPaused(bus, name, true, o.reason);
      emit({ connector: name, paused: true, reason: o.reason });
      console.log(`${name} paused: commands wait in DELIVERIES until resume`);
    }));
  c.command('resume <connector>').description('deliver to a paused connector again').action(async (name: string) => withBus(async (bus) => {
    await assertKnownConnector(bus, name);
    await setPaused(bus, name, false, 'resumed');
    emit({ connector: name, paused: false });
    console.log(`${name} resumed`);
  }));
  registerConnectorsAuth(c);
}

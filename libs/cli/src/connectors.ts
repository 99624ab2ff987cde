import type { Bus } from '@bus/bus';
import type { Command } from 'commander';
import { printTable, withBus } from './context.js';

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

/** Pauses or resumes a connector for every deliver process (they read it within seconds). */
export async function setPaused(bus: Bus, connector: string, paused: boolean, reason: string): Promise<void> {
  await (await bus.kv(bus.names.kv.connectors)).put(connector, JSON.stringify({ paused, reason, at: new Date().toISOString(), by: 'cli' }));
}

export function registerConnectors(program: Command): void {
  const c = program.command('connectors').description('connector state: running or paused (and why), queue');
  c.command('list').option('--json').action(async (o: { json?: boolean }) => withBus(async (bus) => {
    const states = await connectorStates(bus);
    if (o.json) return console.log(JSON.stringify(states, null, 2));
    if (states.length === 0) return console.log('no deliver consumers yet (is deliver running?)');
    printTable(states.map((s) => ({ connector: s.connector, state: s.paused ? 'paused' : 'running', circuit: s.circuit ? `${s.circuit.state} since ${s.circuit.at.slice(11, 19)} (${s.circuit.by})` : 'closed',
      pending: s.pending, 'in flight': s.ackPending, why: s.reason ?? '' })));
  }));
  c.command('pause <connector>').option('--reason <text>', 'shown in list and logs', 'paused by an operator')
    .action(async (name: string, o: { reason: string }) => withBus(async (bus) => {
      await setPaused(bus, name, true, o.reason);
      console.log(`${name} paused: commands wait in DELIVERIES until resume`);
    }));
  c.command('resume <connector>').action(async (name: string) => withBus(async (bus) => {
    await setPaused(bus, name, false, 'resumed');
    console.log(`${name} resumed`);
  }));
}

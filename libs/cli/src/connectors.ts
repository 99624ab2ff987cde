import { assertKnownConnector, connectorStates, setPaused } from '@bus/operations';
import type { Command } from 'commander';
import { registerConnectorsAuth } from './connectors-auth.js';
import { printTable, withBus } from './context.js';
import { emit } from './output.js';

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

// Shared set-up for this package's integration tests (not exported).
import { type Bus, connectBus, loadBusConfig } from '@bus/bus';
import { createLogger } from '@bus/observability';
import { topology } from '@bus/streams';
import { startNats, type TestNats, uniquePrefix } from '@bus/testkit';

/** A nats-server of the suite's own and a bus on it with the topology applied; `stop` closes both. */
export async function startTestBus(): Promise<{ nats: TestNats; bus: Bus; stop(): Promise<void> }> {
  const nats = await startNats();
  const prefix = uniquePrefix();
  const bus = await connectBus({ config: loadBusConfig({ NATS_URL: nats.url, BUS_PREFIX: prefix }), name: 't', log: createLogger({ service: 't', level: 'silent' }) });
  await bus.applyTopology(topology({ prefix }));
  return {
    nats, bus,
    async stop() {
      await bus.close();
      await nats.stop({ removeStore: true });
    },
  };
}

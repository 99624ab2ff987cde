// Shared set-up for this package's integration tests (not exported).
import { createLogger, createMetrics } from '@bus/observability';
import { topology } from '@bus/streams';
import { loadBusConfig } from './config.js';
import { type Bus, connectBus } from './connect.js';

export const silent = createLogger({ service: 'test', level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** A bus on `url`, isolated by `prefix`, with its topology applied. */
export async function testBus(url: string, prefix: string, overrides: Record<string, string> = {}): Promise<Bus> {
  const config = loadBusConfig({ NATS_URL: url, BUS_PREFIX: prefix, BUS_PUBLISH_TIMEOUT_MS: '2000', ...overrides });
  const metrics = createMetrics('test');
  const bus = await connectBus({ config, name: 'test', log: silent, metrics });
  await bus.applyTopology(topology({ prefix, eventsDuplicateWindowSec: 60 }));
  return bus;
}

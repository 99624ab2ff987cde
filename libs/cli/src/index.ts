export { streamsStatus } from './streams.js';
export type { StreamStatus } from './streams.js';
export { discoverServices, up } from './up.js';
export type { ReadyMessage, ServiceEntry } from './up.js';
export { formatAge, formatBytes, natsUrl, printTable, withBus } from './context.js';
export { dlqEntries, parseSince, replayOne } from './dlq.js';
export type { DlqFilter } from './dlq.js';

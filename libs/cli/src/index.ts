// the operations the CLI prints live in @bus/operations (the console calls them too); re-exported for older imports
export { assertKnownConnector, connectorStates, discardEntries, dlqEntries, dlqSummary, knownConnectors, parseSince, replayOne, setPaused, streamsStatus, traceOf } from '@bus/operations';
export type { ConnectorState, DlqFilter, StreamStatus } from '@bus/operations';
export { discoverServices, up } from './up.js';
export type { ReadyMessage, ServiceEntry } from './up.js';
export { formatAge, formatBytes, natsUrl, printTable, withBus } from './context.js';
export { ExitCodes } from './output.js';
export type { ExitCode } from './output.js';

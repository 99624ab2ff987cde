export { defineSource, secretsOf } from './source.js';
export type {
  AnySource, ChangesContext, ChangesPage, ExtractContext, ListedItem, SourceChanges, SourceDefinition, Verification,
} from './source.js';
export { createIntake } from './intake.js';
export type { Answer, Intake, IntakeOptions } from './intake.js';
export { createEventsApi, MAX_BATCH, parseApiTokens } from './events-api.js';
export type { ApiToken, EventsApi, EventsApiOptions } from './events-api.js';
export { createHttpApp } from './http.js';
export type { HttpOptions } from './http.js';
export { createIntakeMetrics } from './metrics.js';
export type { IntakeMetrics } from './metrics.js';
export { correlationIdOf } from './correlation.js';
export { createDedupLog, dedupKey, hashOf, parseHorizon } from './dedup.js';
export type { DedupLog, DedupLogOptions, SeenRecord } from './dedup.js';
export { problem, PROBLEM_CONTENT_TYPE } from './problem.js';
export { serveReplays } from './replay.js';
export { pollSourceChanges } from './poll.js';
export type { PollOutcome, PollResult, PollSourceOptions } from './poll.js';
export { readCheckpoint as readSourceCheckpoint, sourceCheckpointKey, sourceLeaseKey } from './checkpoint.js';
export type { SourceCheckpoint } from './checkpoint.js';
export type { ReplayReply, ReplayRequest } from './replay.js';

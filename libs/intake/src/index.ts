export { defineSource, secretsOf } from './source.js';
export type {
  AnySource, ChangesContext, ChangesPage, ExtractContext, ListedItem, RefetchContext, Refetched, SourceChanges, SourceDefinition, SourceRefetch, Verification,
} from './source.js';
export { createSourceClient, SourceApiError } from './source-api.js';
export type { SourceAnswer, SourceApi, SourceClient } from './source-api.js';
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
export { problem, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX, PROBLEM_TYPES } from './problem.js';
export type { Problem, ProblemSlug } from './problem.js';
export { EventsAnswerSchema, EventsBatchSchema, openApiDocument, OutgoingEventSchema, ProblemSchema, WebhookAnswerSchema } from './openapi.js';
export { serveReplays } from './replay.js';
export { pollSourceChanges } from './poll.js';
export { lastEventAt, learnRhythm, QUIET_FACTOR, sourceRhythmKey, sourcesRhythm, watchSourceRhythm } from './rhythm.js';
export type { SourceRhythm, WatchRhythmOptions } from './rhythm.js';
export type { PollOutcome, PollResult, PollSourceOptions } from './poll.js';
export { readCheckpoint as readSourceCheckpoint, sourceCheckpointKey, sourceLeaseKey } from './checkpoint.js';
export type { SourceCheckpoint } from './checkpoint.js';
export type { ReplayReply, ReplayRequest } from './replay.js';

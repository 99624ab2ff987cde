export { BusEnv, loadBusConfig, parseEnv } from './config.js';
export type { BusConfig } from './config.js';
export { connectBus } from './connect.js';
export type { Bus, ConnectOptions } from './connect.js';
export { createPublish, classifyPublishError, PublishError } from './publish.js';
export type { Publish, Published, PublishOptions } from './publish.js';
export { endOfTurn } from './turn.js';
export { encodedHeaders, jsPublisher } from './js-ack.js';
export type { JsPublish, PubAck } from './js-ack.js';
export { applyTopology, ensureConsumer } from './topology.js';
export type { Drift, TopologyReport } from './topology.js';
export { consume, outcomeOfError } from './consume.js';
export { classifyNatsError, NatsError } from './nats-errors.js';
export type { ConsumeOptions, Consumption, HandlerContext } from './consume.js';
export { deadLetter, defer, done, retryAfter } from './outcome.js';
export type { Outcome } from './outcome.js';
export {
  DeadLetter, decodeDeadLetter, encodeDeadLetter, ORIGINAL_MSG_ID_HEADER, PRIOR_HISTORY_HEADER, priorHistoryHeader, readPriorHistory, REPLAYS_HEADER,
} from './dead-letter.js';
export type { PriorHistory } from './dead-letter.js';
export { dlqStats, watchDlq } from './dlq-stats.js';
export type { DlqSubjectStats, DlqWatch } from './dlq-stats.js';
export { republishDeadLetter } from './republish.js';
export { onShutdown } from './shutdown.js';
export {
  AUDIT_FOLD_MS, AuditHeaders, auditHeaderHas, auditIndexKeys, auditMessages, auditMsgId, decodeAudit, decodeAuditIndex, decodeAuditRecords, encodeAudit,
  encodeAuditRecords, foldAuditRecords, parseEntityKey,
} from './audit.js';
export type { AuditIndexEntry, AuditIndexKey, AuditMessage, AuditRecord, TraceKeyKind } from './audit.js';
export { createAuditWriter } from './audit-writer.js';
export type { AuditWriteOptions, AuditWriter, AuditWriterOptions } from './audit-writer.js';
export { auditOfCorrelation, auditRecordsOf, auditTrace, correlationsOf, legacyAuditOf, TRACE_MAX_CORRELATIONS } from './audit-read.js';
export type { TraceResult } from './audit-read.js';
export { watchJetStream } from './jetstream-health.js';
export { firstSeqSince, readRange, readStream, subjectMessages } from './read.js';
export type { RangeOptions } from './read.js';
export { runService } from './service.js';
export { PIPELINE_NODE_FLAGS, serviceNodeFlags } from './node-flags.js';
export type { ServiceContext, ServiceOptions, Started } from './service.js';
export { serverAtLeast, serverCaveats } from './server-caveats.js';

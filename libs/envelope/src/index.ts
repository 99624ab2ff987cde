export { Envelope, EntityRef, IsoUtc } from './schema.js';
export { EnvelopeError, toFieldIssues } from './errors.js';
export type { FieldIssue } from './errors.js';
export { encode, decode, encodeEnvelope, decodeEnvelope, parseEnvelope, CONTENT_TYPE } from './codec.js';
export { Headers, envelopeHeaders, readHeaderFacts } from './headers.js';
export type { HeaderName, HeaderFacts } from './headers.js';
export { newEventId, newCorrelationId } from './ids.js';
export { createEnvelope, causedBy } from './create.js';
export type { DomainEvent, EnvelopeContext } from './create.js';

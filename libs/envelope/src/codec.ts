import { Decoder, Encoder } from '@msgpack/msgpack';
import { EnvelopeError, toFieldIssues } from './errors.js';
import { Envelope } from './schema.js';

// One encoder/decoder per process: they reuse their buffers, which matters on the hot path.
const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

/** The content type stamped on every message the bus writes. */
export const CONTENT_TYPE = 'application/msgpack';

/** Encodes any value as msgpack (undefined fields are left out). */
export function encode(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decodes msgpack bytes; throws EnvelopeError (business) for bytes that are not msgpack. */
export function decode(bytes: Uint8Array): unknown {
  try {
    return decoder.decode(bytes);
  } catch (cause) {
    throw new EnvelopeError([{ path: '(root)', message: `not msgpack: ${(cause as Error).message}` }], 'message', {
      cause,
    });
  }
}

/** Encodes an envelope. The envelope is trusted: build it with createEnvelope() or parseEnvelope(). */
export function encodeEnvelope(env: Envelope): Uint8Array {
  return encoder.encode(env);
}

/** Validates anything as an envelope, naming every bad field in the error. */
export function parseEnvelope(value: unknown): Envelope {
  const parsed = Envelope.safeParse(value);
  if (!parsed.success) throw new EnvelopeError(toFieldIssues(parsed.error.issues));
  return parsed.data as Envelope;
}

/** Decodes and validates an envelope from message bytes. Untrusted input: always validated. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  return parseEnvelope(decode(bytes));
}

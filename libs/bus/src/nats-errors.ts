import { BusError, type FailureClass } from '@bus/errors';
import {
  AuthorizationError, ClosedConnectionError, ConnectionError, DrainingConnectionError, NoRespondersError, PermissionViolationError, RequestError,
  TimeoutError,
} from '@nats-io/nats-core';
import { JetStreamApiError, JetStreamError } from '@nats-io/jetstream';
// the main entry exports neither "JetStream not enabled" (v3's name for "nobody answered a
// JetStream request") nor pull status errors; the internal entry is the same module
import { JetStreamStatusError, jserrors } from '@nats-io/jetstream/internal';

const { JetStreamNotEnabled } = jserrors;

/**
 * A NATS or JetStream failure, classified. Transient: NATS_TIMEOUT, NATS_UNAVAILABLE,
 * NATS_DISCONNECTED, NATS_CONFLICT. Permanent: NATS_STREAM_NOT_FOUND, NATS_CONSUMER_NOT_FOUND,
 * NATS_NOT_PERMITTED, NATS_REJECTED. `cause` is what the client threw.
 */
export class NatsError extends BusError {}

const APPLY = 'run `bus streams apply` (it creates missing streams and buckets, then `bus streams status` shows them)';

/** JetStream API error codes (nats-server's errors.json) for a stream or cluster that is only briefly unable to answer. */
const clusterBlips = new Set([
  10006, // JetStream not in clustered mode / cluster not active
  10007, // JetStream cluster not assigned to this server
  10008, // JetStream cluster temporarily unavailable
  10009, // JetStream cluster not leader
  10118, // stream is offline
  10119, // consumer is offline
]);
/** The stream changed between a read and a compare-and-set: reading again and retrying succeeds. */
const conflicts = new Set([10071 /* wrong last sequence */, 10164 /* wrong last sequence, unknown */]);

/** `$KV.<bucket>.<key>` names a bucket; `$JS.API.<VERB…>.<STREAM>` a stream; anything else is itself. */
function resourceOfSubject(subject: string): string {
  const kv = /^\$KV\.([^.]+)\./.exec(subject);
  if (kv) return `KV bucket ${kv[1]}`;
  const api = /^\$JS\.API\.(?:DIRECT\.GET|STREAM\.[A-Z.]+|CONSUMER\.[A-Z.]+)\.([^.]+)/.exec(subject);
  if (api) return api[1]!.startsWith('KV_') ? `KV bucket ${api[1]!.slice(3)}` : `stream ${api[1]}`;
  return `subject ${subject}`;
}

function classifyOne(e: Error, what: string | undefined, cause: unknown): NatsError | undefined {
  const make = (code: string, failureClass: FailureClass, message: string) => new NatsError(code, failureClass, message, { cause });
  const about = what ? ` (${what})` : '';
  if (e instanceof TimeoutError) {
    return make('NATS_TIMEOUT', 'transient', `NATS did not answer in time${about}: the server is restarting, overloaded or unreachable, or a stream is electing a leader. ` +
      `Retried with backoff; if it persists, check the server and \`bus streams status\``);
  }
  if (e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders())) {
    const subject = e instanceof NoRespondersError ? e.subject : (e.cause as NoRespondersError).subject;
    return make('NATS_UNAVAILABLE', 'transient', `nothing answered on ${subject}${about}: JetStream is unavailable, ${resourceOfSubject(subject)} has no leader right now, ` +
      `or it does not exist. Retried with backoff; if it persists, ${APPLY}`);
  }
  if (e instanceof JetStreamNotEnabled) {
    // v3 reports "nobody answered a JetStream request" this way: the cause says on which subject
    const inner = e.cause instanceof Error ? classifyOne(e.cause, what, cause) : undefined;
    if (inner) return inner;
    return make('NATS_UNAVAILABLE', 'transient', `JetStream is not available${about}: it is starting, not enabled on this server, or not enabled for this account. ` +
      'Retried with backoff; if it persists, check the server runs with JetStream (-js)');
  }
  if (e instanceof ClosedConnectionError || e instanceof DrainingConnectionError || e instanceof ConnectionError || e instanceof RequestError) {
    return make('NATS_DISCONNECTED', 'transient', `the NATS connection was lost or is closing${about} (${e.message}): this process is stopping, or NATS went away mid-request. ` +
      'The message goes back to its stream and is tried again');
  }
  if (e instanceof PermissionViolationError || e instanceof AuthorizationError) {
    return make('NATS_NOT_PERMITTED', 'permanent', `NATS refused this process's credentials${about}: ${e.message}. Grant the user the subject, then replay`);
  }
  if (e instanceof JetStreamApiError && e.code === 10059) {
    return make('NATS_STREAM_NOT_FOUND', 'permanent', `a stream or KV bucket does not exist${about ? about : ' (the one this step reads or writes)'}: JetStream answered ` +
      `"${e.message}" (10059). Not retried: ${APPLY}, then replay the DLQ entry`);
  }
  if (e instanceof JetStreamApiError && e.code === 10014) {
    return make('NATS_CONSUMER_NOT_FOUND', 'permanent', `a JetStream consumer does not exist${about}: "${e.message}" (10014). ` +
      'Not retried: restart the service that owns it (it creates its consumers at start), then replay the DLQ entry');
  }
  if (e instanceof JetStreamApiError) {
    const { code = 0, status = 0 } = e;
    if (conflicts.has(code)) {
      return make('NATS_CONFLICT', 'transient', `another writer changed ${what ?? 'the key'} between read and write (JetStream ${code}: "${e.message}"); retried, reading it again`);
    }
    if (status >= 500 || status === 408 || clusterBlips.has(code)) {
      return make('NATS_UNAVAILABLE', 'transient', `JetStream could not serve the request${about}: "${e.message}" (${code}, status ${status}). ` +
        'Retried with backoff; if it persists, check the cluster (`nats server report jetstream`) and `bus streams status`');
    }
    return make('NATS_REJECTED', 'permanent', `JetStream refused the request${about}: "${e.message}" (${code}, status ${status}). Retrying the same request gets the same answer; ` +
      'fix the definition or the caller, then replay');
  }
  if (e instanceof JetStreamStatusError) {
    if (/deleted/.test(e.message)) return make('NATS_STREAM_NOT_FOUND', 'permanent', `a stream or consumer was deleted${about}: "${e.message}". Not retried: ${APPLY}`);
    return make('NATS_UNAVAILABLE', 'transient', `JetStream answered status ${e.code}${about}: "${e.message}". Retried with backoff`);
  }
  if (e instanceof JetStreamError) {
    return make('NATS_UNAVAILABLE', 'transient', `JetStream failed${about}: ${e.message}. Retried with backoff`);
  }
  return undefined;
}

/**
 * The one place a NATS or JetStream client error (@nats-io v3) gets its failure class.
 * A blip — a timeout, no responders, JetStream unavailable (503, no leader), a connection
 * lost or closing, a compare-and-set lost to another writer — is transient; a missing
 * stream, bucket or consumer, a permission refused, or any other request JetStream rejects
 * is permanent, with a message that says what to run. Matches by class, so a client
 * upgrade that renames one breaks the build and the tests, not the classification.
 *
 * Looks through `cause` (a plain Error wrapping a NATS one), not into a BusError: its
 * thrower already classified it. `what` names what was being read or written (`KV bucket
 * bus_versions`), for the message. Undefined when `err` is no NATS error.
 */
export function classifyNatsError(err: unknown, what?: string): NatsError | undefined {
  if (err instanceof NatsError) return err;
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e instanceof Error && !(e instanceof BusError); depth++, e = e.cause) {
    const found = classifyOne(e, what, err);
    if (found) return found;
  }
  return undefined;
}

import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { type Msg, type MsgHdrs, MsgHdrsImpl, type NatsConnection, TimeoutError } from '@nats-io/nats-core';
import { encodedHeaders, jsPublisher, sharedRequest } from './js-ack.js';

const TIMEOUT_MS = 5_000; // the client's JetStream default
/** A direct get unanswered this long is asked again of the stream's leader, within TIMEOUT_MS in all (see kv.get). */
const DIRECT_TIMEOUT_MS = 1_000;
const PLAIN_KEY = /^[-/=\w]+(\.[-/=\w]+)*$/; // a key nats.js accepts as it is (no wildcards, no empty tokens)
const decoder = new TextDecoder();

type MsgGetAnswer = {
  message?: { subject: string; seq: number; hdrs?: string; data?: string; time: string };
  error?: ConstructorParameters<typeof JetStreamApiError>[0];
};

/**
 * A bucket's per-entry calls — get, create, update, put — sent as nats.js's KV sends them (the same
 * subjects, headers and APIs, so the same answers and errors) but on the connection's one reply
 * subscription (js-ack.ts), with headers written as bytes once, and a key that is not there answered
 * as null without an error object made and thrown inside the client (the ordering guard looks for
 * the partition of every new entity; nats.js makes a JetStreamApiError for each: 2.4 % of deliver).
 *
 * Reads: with `direct` (the caller's word that the bucket's stream has one replica and allows direct
 * gets: {@link readsDirect}) a direct get (`$JS.API.DIRECT.GET.<stream>.<subject>`): the stored message
 * as it is, where STREAM.MSG.GET answers JSON with the message in base64 — measured on nats-server
 * 2.9.10, 40 → 14 µs of the server's CPU per read. On one replica both are answered by the server that
 * stored the writes, so a read begun after a write's acknowledgement sees it. A direct get unanswered for
 * a second is asked again of the leader (nats-server 2.9 answers none for a stream that is gone, where the
 * leader read says "no such stream" at once). Otherwise reads go to the
 * stream's leader (STREAM.MSG.GET), as `kvm.open`'s buckets read: on R3 any replica may answer a
 * direct get, one that is behind included. Anything else — a revision read, a marker TTL, a key in
 * another form, a custom codec — and every other method stay nats.js's own. Changes `kv` in place and
 * returns it.
 */
export function fasterKvCalls(kv: KV, nc: NatsConnection, bucket: string, direct = false): KV {
  const publish = jsPublisher(nc);
  const request = sharedRequest(nc);
  const base = `$KV.${bucket}.`;
  const stream = `KV_${bucket}`;
  const getApi = `$JS.API.STREAM.MSG.GET.${stream}`;
  const library = { get: kv.get.bind(kv), create: kv.create.bind(kv), update: kv.update.bind(kv), put: kv.put.bind(kv) };
  const asIs = (data: unknown): data is Uint8Array | string => typeof data === 'string' || data instanceof Uint8Array;
  const cas = async (key: string, data: Uint8Array | string, previous: number | undefined, timeoutMs = TIMEOUT_MS) =>
    (await publish(base + key, data, previous === undefined ? undefined : encodedHeaders({ 'Nats-Expected-Last-Subject-Sequence': String(previous) }), timeoutMs)).seq;

  kv.create = async (key, data, markerTTL) => {
    if (markerTTL !== undefined || !PLAIN_KEY.test(key) || !asIs(data)) return library.create(key, data, markerTTL);
    try {
      return await cas(key, data, 0);
    } catch (err) {
      // the key exists: nats.js's create also succeeds over a delete or purge marker; it tries once more and says which
      if (err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)) {
        return library.create(key, data);
      }
      throw err;
    }
  };
  kv.update = (key, data, version, timeout) => {
    if (version <= 0 || !PLAIN_KEY.test(key) || !asIs(data)) return library.update(key, data, version, timeout);
    return cas(key, data, version, timeout);
  };
  kv.put = (key, data, opts) => {
    const plain = !opts || Object.keys(opts).every((k) => k === 'previousSeq' || k === 'timeout');
    if (!plain || !PLAIN_KEY.test(key) || !asIs(data)) return library.put(key, data, opts);
    return cas(key, data, opts?.previousSeq, opts?.timeout);
  };
  const directApi = `$JS.API.DIRECT.GET.${stream}.${base}`;
  kv.get = async (key, opts) => {
    if (opts?.revision || !PLAIN_KEY.test(key)) return library.get(key, opts);
    if (direct) {
      const m = await request(directApi + key, '', undefined, DIRECT_TIMEOUT_MS).catch((err: unknown) => {
        if (err instanceof TimeoutError) return undefined;
        throw err;
      });
      if (m) {
        const code = m.headers?.code ?? 0;
        if (code === 404) return null;
        const seq = Number(m.headers?.get('Nats-Sequence'));
        if (code >= 300 || !Number.isSafeInteger(seq)) return library.get(key, opts); // the client's own error for anything else
        return directEntryOf(bucket, key, m, seq);
      }
      // no answer: nats-server (2.9) leaves a direct get for a stream that is gone unanswered; the leader read, in the
      // time left, says "no such stream" (permanent: `bus streams apply`), or times out as any read would
    }
    const m = await request(getApi, JSON.stringify({ last_by_subj: base + key }), undefined, direct ? TIMEOUT_MS - DIRECT_TIMEOUT_MS : TIMEOUT_MS);
    const answer = JSON.parse(decoder.decode(m.data)) as MsgGetAnswer;
    if (answer.error?.err_code === JetStreamApiCodes.NoMessageFound) return null;
    if (answer.error || !answer.message) return library.get(key, opts); // the client's own error for anything else
    return entryOf(bucket, key, answer.message);
  };
  return kv;
}

/**
 * Whether a bucket's reads may be direct gets ({@link fasterKvCalls}): its stream has one replica and
 * allows them, and the bus is configured for one replica. Decided when the process opens the bucket: a
 * bucket given more replicas by hand meanwhile is read directly until the next start (which applies
 * streams/ and sets it back to BUS_REPLICAS). A mirror made with `mirror_direct` would answer them
 * too: the bus makes none.
 */
export function readsDirect(config: { num_replicas?: number; allow_direct?: boolean } | undefined, busReplicas: number): boolean {
  return busReplicas === 1 && config?.num_replicas === 1 && config.allow_direct === true;
}

/** A stored message as nats.js's KV entry (KvStoredEntryImpl's rules: operation from KV-Operation or a MaxAge marker). */
function entryOf(bucket: string, key: string, sm: NonNullable<MsgGetAnswer['message']>): KvEntry {
  const value = sm.data ? new Uint8Array(Buffer.from(sm.data, 'base64')) : new Uint8Array(0);
  const headers = sm.hdrs ? MsgHdrsImpl.decode(new Uint8Array(Buffer.from(sm.hdrs, 'base64'))) : undefined;
  return kvEntry(bucket, key, value, headers, sm.seq, new Date(sm.time));
}

/** A direct get's answer as nats.js's KV entry: the stored message's headers, and the server's (Nats-Sequence, Nats-Time-Stamp). */
function directEntryOf(bucket: string, key: string, m: Msg, seq: number): KvEntry {
  return kvEntry(bucket, key, m.data, m.headers, seq, new Date(Date.parse(m.headers?.get('Nats-Time-Stamp') ?? '')));
}

function kvEntry(bucket: string, key: string, value: Uint8Array, headers: MsgHdrs | undefined, revision: number, created: Date): KvEntry {
  const marker = headers?.get('Nats-Marker-Reason');
  const operation = (marker === 'MaxAge' ? 'PURGE' : headers?.get('KV-Operation') || 'PUT') as KvEntry['operation'];
  const size = headers?.get('Nats-Msg-Size');
  return {
    bucket, key, rawKey: key, value, operation, revision, created, delta: 0,
    length: size ? Number.parseInt(size, 10) : value.length,
    json: <T>(reviver?: (this: unknown, key: string, value: unknown) => unknown) => JSON.parse(decoder.decode(value), reviver) as T,
    string: () => decoder.decode(value),
  };
}

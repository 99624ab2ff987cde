import { JetStreamApiError } from '@nats-io/jetstream';
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, NoRespondersError, TimeoutError } from '@nats-io/nats-core';

const HEADER_NAME = /^[!-9;-~]+$/; // printable ASCII but ':'
const validNames = new Set<string>();

/**
 * NATS headers written once as their wire bytes. nats.js's own headers canonicalise the key
 * character by character, list every key to find it again and validate with a new regular
 * expression on each `set`, then build the block by string concatenation: 16 % of the bytes ingest
 * allocated, on every publish of the per-event path. nats-core only asks a message's headers for
 * `encode()` when it publishes, so this object is all it needs; keys are kept as given (nats.js's
 * exact match) and values are trimmed, as nats.js does. Empty values are left out.
 */
export function encodedHeaders(h: Record<string, string | undefined>): MsgHdrs {
  let s = 'NATS/1.0';
  for (const k in h) {
    const v = h[k];
    if (v === undefined || v === '') continue;
    if (!validNames.has(k)) {
      if (!HEADER_NAME.test(k)) throw new TypeError(`'${k}' is not a valid NATS header name`);
      if (validNames.size < 1_000) validNames.add(k); // the bus's own few names; any others are checked each time
    }
    if (v.includes('\r') || v.includes('\n')) throw new TypeError(`the value of NATS header ${k} cannot contain \\r or \\n`);
    s += `\r\n${k}: ${v.trim()}`;
  }
  const bytes = Buffer.from(`${s}\r\n\r\n`);
  return { encode: () => bytes } as unknown as MsgHdrs;
}

/** What JetStream acknowledged for one stored message. */
export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

interface Waiting {
  resolve: (m: Msg) => void;
  reject: (err: unknown) => void;
  dueMs: number;
}

/** Requests of one connection answered on one reply subscription, waiting ones grouped by timeout (each group in due order). */
interface Replies {
  prefix: string;
  byTimeout: Map<number, Map<string, Waiting>>;
  ids: Map<string, Map<string, Waiting>>;
  next: number;
}

const SWEEP_MS = 100;
const repliesOf = new WeakMap<NatsConnection, Replies>();
const decoder = new TextDecoder();

function replies(nc: NatsConnection): Replies {
  const existing = repliesOf.get(nc);
  if (existing) return existing;
  const r: Replies = { prefix: createInbox(), byTimeout: new Map(), ids: new Map(), next: 0 };
  nc.subscribe(`${r.prefix}.*`, {
    callback: (err, m) => {
      if (err) return;
      const id = m.subject.slice(r.prefix.length + 1);
      const group = r.ids.get(id);
      const w = group?.get(id);
      if (!group || !w) return; // timed out meanwhile
      group.delete(id);
      r.ids.delete(id);
      w.resolve(m);
    },
  });
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const group of r.byTimeout.values()) {
      // one timeout per group: the oldest first (a Map keeps insertion order), stop at the first one still in time
      for (const [id, w] of group) {
        if (w.dueMs > now) break;
        group.delete(id);
        r.ids.delete(id);
        w.reject(new TimeoutError());
      }
    }
  }, SWEEP_MS);
  sweep.unref();
  nc.closed().then(() => {
    clearInterval(sweep);
    for (const group of r.byTimeout.values()) for (const w of group.values()) w.reject(new TimeoutError());
    r.byTimeout.clear();
    r.ids.clear();
  }, () => undefined);
  repliesOf.set(nc, r);
  return r;
}

/**
 * A request answered on the connection's one reply subscription: what `nc.request` does, without a
 * request object, timer, promise chain and error object each (the client makes a RequestError per
 * answered request, see nats-request.ts). Rejects with TimeoutError after `timeoutMs` (within 0.1 s),
 * or with what publishing threw. Requests made in one event-loop turn leave in one socket write.
 */
export function sharedRequest(nc: NatsConnection): (subject: string, data: Uint8Array | string, headers: MsgHdrs | undefined, timeoutMs: number) => Promise<Msg> {
  const r = replies(nc);
  return (subject, data, headers, timeoutMs) => new Promise<Msg>((resolve, reject) => {
    const id = (r.next++).toString(36);
    let group = r.byTimeout.get(timeoutMs);
    if (!group) {
      group = new Map();
      r.byTimeout.set(timeoutMs, group);
    }
    group.set(id, { resolve, reject, dueMs: performance.now() + timeoutMs });
    r.ids.set(id, group);
    try {
      nc.publish(subject, data, { reply: `${r.prefix}.${id}`, ...(headers ? { headers } : {}) });
    } catch (err) {
      group.delete(id);
      r.ids.delete(id);
      reject(err);
    }
  });
}

/** What JetStream answered to a publish: its acknowledgement, or the error it stands for. */
export function parsePubAck(m: Msg, subject: string): PubAck {
  if (m.data.length === 0 && m.headers?.code === 503) throw new NoRespondersError(subject);
  const ack = JSON.parse(decoder.decode(m.data)) as { stream?: string; seq?: number; duplicate?: boolean; error?: ConstructorParameters<typeof JetStreamApiError>[0] };
  if (ack.error) throw new JetStreamApiError(ack.error);
  if (typeof ack.seq !== 'number' || typeof ack.stream !== 'string') throw new Error(`not a JetStream publish acknowledgement: ${decoder.decode(m.data).slice(0, 200)}`);
  return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true };
}

/**
 * Publishes into a stream and resolves with its acknowledgement — what `js.publish` does — on the
 * connection's one reply subscription ({@link sharedRequest}), the acknowledgement parsed once.
 * Rejects as the client does: JetStreamApiError (a conflict, a full stream), NoRespondersError (no
 * stream takes the subject), TimeoutError after `timeoutMs` (the message may be stored).
 */
export type JsPublish = (subject: string, data: Uint8Array | string, headers: MsgHdrs | undefined, timeoutMs: number) => Promise<PubAck>;

export function jsPublisher(nc: NatsConnection): JsPublish {
  const request = sharedRequest(nc);
  return async (subject, data, headers, timeoutMs) => parsePubAck(await request(subject, data, headers, timeoutMs), subject);
}

import { createHash } from 'node:crypto';
import { type Bus, type DeadLetter, PublishError } from '@bus/bus';
import { createEnvelope, EnvelopeError, type FieldIssue, toFieldIssues } from '@bus/envelope';
import { BusError, describeError } from '@bus/errors';
import { type Logger, logFor } from '@bus/observability';
import { correlationIdOf } from './correlation.js';
import { createDedupLog, type DedupLog, dedupKey, parseHorizon } from './dedup.js';
import type { IntakeMetrics } from './metrics.js';
import { type ProblemSlug, problem } from './problem.js';
import type { AnySource, ListedItem } from './source.js';
import { type SourceVerifier, unsignedDeliveryId, verifierFor } from './verify.js';

export type Headers = Record<string, string | string[] | undefined>;

/** What ingest answers; the HTTP layer only copies it out. */
export interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

export interface IntakeOptions {
  bus: Bus;
  sources: AnySource[];
  env: NodeJS.ProcessEnv;
  log: Logger;
  metrics: IntakeMetrics;
  /** Seconds a provider is told to wait when the bus cannot store (Retry-After). Default 5. */
  retryAfterSec?: number;
  /**
   * Default true. false: an intake for listed items only (`receiveListed`, e.g. in reconcile):
   * no verifiers are built, so no webhook secrets are needed, and `receive()` throws.
   */
  webhooks?: boolean;
  /** Dedup past the EVENTS window (libs/intake/src/dedup.ts). Default: one made here from the sources' `dedupHorizon`s. */
  dedup?: DedupLog;
}

/** How a payload reached the pipeline; `listing` and `replay` skip signature verification. */
type Via = 'webhook' | 'listing' | 'replay';

interface StoreOptions {
  checkDedup: boolean;
  quarantine: boolean;
  via: Via;
  /** Stop before anything is written: answer what would happen (`would-store`, `duplicate`, `would-quarantine`). */
  dryRun?: boolean;
  /** The reconcile run that listed it, kept in the audit record. */
  runId?: string;
}

/** Request headers kept with a quarantined payload: enough to re-extract it, no credentials. */
function keptHeaders(h: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k === 'authorization' || k === 'cookie') continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * The ingest pipeline, independent of HTTP: verify → parse → dedup → validate → store →
 * answer. 2xx only after JetStream acknowledged storing (or the payload was quarantined
 * in the DLQ, which is stored too).
 */
export function createIntake(o: IntakeOptions) {
  const sources = new Map(o.sources.map((s) => [s.name, s]));
  const verifiers = new Map<string, SourceVerifier>(o.webhooks === false ? [] : o.sources.map((s) => [s.name, verifierFor(s, o.env)]));
  const retryAfter = String(o.retryAfterSec ?? 5);
  const dedup = o.dedup ?? createDedupLog({ bus: o.bus, log: o.log, horizons: new Map(o.sources.map((s) => [s.name, parseHorizon(s.dedupHorizon) ?? 0])) });

  const answer = (status: number, correlationId: string, body: Record<string, unknown>, extra: Record<string, string> = {}): Answer => ({
    status, body, headers: { 'x-correlation-id': correlationId, ...extra },
  });
  const unavailable = (correlationId: string, source: string, err: unknown, log: Logger): Answer => {
    o.metrics.rejected.inc({ source, reason: 'unavailable' });
    log.warn({ err: describeError(err) }, 'could not store; answered 503 so the provider retries');
    return answer(503, correlationId,
      problem(503, 'store-unavailable', 'Event store unavailable', 'The bus could not store this delivery. Nothing was kept; retry after the indicated time.', { correlationId }),
      { 'retry-after': retryAfter });
  };

  async function quarantine(source: AnySource, headers: Headers, body: Buffer, deliveryId: string, correlationId: string,
    issues: FieldIssue[], log: Logger, details: Record<string, unknown> | undefined): Promise<Answer> {
    const key = dedupKey(source.name, deliveryId);
    const entry: DeadLetter = {
      id: key, stage: 'ingest', connector: source.name, failureClass: 'business', code: 'INGEST_PAYLOAD_INVALID',
      reason: `payload from ${source.name} fails its schema: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}. Fix the schema (or the sender), then replay it.`,
      details: { issues }, attempts: 1, history: [], deadLetteredAt: new Date().toISOString(), correlationId,
      original: { stream: 'ingest', seq: 0, subject: `ingest.webhooks.${source.name}`, msgId: deliveryId, headers: keptHeaders(headers), data: body },
      replays: 0,
    };
    const stored = await o.bus.deadLetter(entry);
    o.metrics.quarantined.inc({ source: source.name });
    log.warn({ issues }, 'authentic payload fails its schema: quarantined in the DLQ');
    o.bus.audit({ stage: 'ingest', outcome: 'quarantined', correlationId, source: source.name, reason: entry.reason, ...(details ? { details } : {}) });
    return answer(202, correlationId, { status: 'quarantined', correlationId, issues, dlqSeq: stored.seq });
  }

  /** Everything after authentication; a listed item and the replay of a quarantined payload enter here too. */
  async function storeAuthentic(source: AnySource, headers: Headers, body: Buffer, correlationId: string, signedDeliveryId: string | undefined,
    opts: StoreOptions): Promise<Answer> {
    // webhooks keep their audit records as they were; the other ways in say which they are
    const details = opts.via === 'webhook' ? undefined : { via: opts.via, ...(opts.runId ? { runId: opts.runId } : {}) };
    let child: Logger | undefined;
    const log = () => (child ??= logFor(o.log, { correlationId, source: source.name })); // made only when something is logged
    let payload: unknown;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch {
      o.metrics.rejected.inc({ source: source.name, reason: 'not_json' });
      return answer(400, correlationId, problem(400, 'not-json', 'Body is not JSON', `The body of this ${source.name} delivery is not valid JSON; nothing was stored.`, { correlationId }));
    }
    const parsed = source.schema.safeParse(payload);
    const ctx = { payload: parsed.success ? parsed.data : payload, headers, signedDeliveryId };
    let deliveryId: string | undefined;
    try {
      deliveryId = source.deliveryId(ctx as never) || signedDeliveryId;
    } catch {
      deliveryId = signedDeliveryId;
    }
    // no id at all: the body's hash still makes an identical retry a duplicate
    deliveryId ??= `sha256-${createHash('sha256').update(body).digest('hex')}`;

    try {
      if (opts.checkDedup) {
        const seen = await dedup.seen(source.name, `${source.name}:${deliveryId}`);
        if (seen) {
          o.metrics.duplicate.inc({ source: source.name, where: 'dedup' });
          return answer(200, correlationId, { status: 'duplicate', eventId: seen.eventId, correlationId });
        }
      }
      if (!parsed.success) {
        const issues = toFieldIssues(parsed.error.issues);
        if (opts.dryRun) return answer(200, correlationId, { status: 'would-quarantine', correlationId, issues });
        // a replay that still fails leaves its one DLQ entry where it is
        if (!opts.quarantine) return answer(422, correlationId, problem(422, 'still-invalid', 'Payload still invalid', 'The payload still fails its schema.', { issues }));
        return await quarantine(source, headers, body, deliveryId, correlationId, issues, log(), details);
      }

      let env: ReturnType<typeof createEnvelope>;
      try {
        env = createEnvelope({
          type: source.eventType(ctx as never), entity: source.entity(ctx as never),
          version: source.version(ctx as never), versionKind: source.versionKind, occurredAt: source.occurredAt(ctx as never),
          data: source.data ? source.data(ctx as never) : (parsed.data as Record<string, unknown>), schemaVersion: source.schemaVersion,
        }, { source: source.name, id: `${source.name}:${deliveryId}`, correlationId });
      } catch (err) {
        const issues = err instanceof EnvelopeError ? err.issues : [{ path: '(extract)', message: (err as Error).message }];
        if (opts.dryRun) return answer(200, correlationId, { status: 'would-quarantine', correlationId, issues });
        if (!opts.quarantine) return answer(422, correlationId, problem(422, 'still-invalid', 'Payload still invalid', 'The payload still cannot be made an event.', { issues }));
        return await quarantine(source, headers, body, deliveryId, correlationId, issues, log(), details);
      }
      if (opts.dryRun) return answer(200, correlationId, { status: 'would-store', eventId: env.id, correlationId });
      const stored = await o.bus.publishEnvelope(o.bus.names.subjects.event(source.name, env.type), env);
      if (stored.duplicate) {
        o.metrics.duplicate.inc({ source: source.name, where: 'stream' });
        return answer(200, correlationId, { status: 'duplicate', eventId: env.id, correlationId });
      }
      o.metrics.count.stored(source.name, { source: source.name });
      dedup.record(source.name, env.id, stored.seq);
      o.bus.audit({
        stage: 'ingest', outcome: 'stored', correlationId, eventId: env.id, source: source.name, entity: env.entity, version: env.version, ...(details ? { details } : {}),
      });
      return answer(202, correlationId, { status: 'stored', eventId: env.id, correlationId, seq: stored.seq });
    } catch (err) {
      if (err instanceof PublishError || describeError(err).failureClass === 'transient' || isNatsError(err)) return unavailable(correlationId, source.name, err, log());
      throw err;
    }
  }

  return {
    sources,
    dedup,
    /** Stores the dedup entries still pending and stops reading DEDUP (before the bus closes). */
    close: () => dedup.close(),
    /** POST /webhooks/:source */
    async receive(sourceName: string, headers: Headers, body: Buffer): Promise<Answer> {
      const started = performance.now();
      const correlationId = correlationIdOf(headers);
      const source = sources.get(sourceName);
      let result: Answer;
      if (!source) {
        o.metrics.rejected.inc({ source: '(unknown)', reason: 'unknown_source' });
        result = answer(404, correlationId, problem(404, 'unknown-source', 'Unknown source', 'No webhook source of that name is configured here; nothing was stored. Check the URL the provider posts to (POST /webhooks/<source>).', { correlationId }));
      } else {
        o.metrics.count.received(sourceName, { source: sourceName });
        const verifier = verifiers.get(sourceName);
        // plain on purpose: a programmer assertion (an intake made for listed items only was handed a webhook)
        if (!verifier) throw new Error(`this intake was made with webhooks: false (listed items only); it cannot receive a ${sourceName} webhook`);
        const verified = verifier.verify(headers, body);
        if (!verified.ok) {
          o.metrics.rejected.inc({ source: sourceName, reason: verified.reason });
          logFor(o.log, { correlationId, source: sourceName }).warn({ reason: verified.reason }, `webhook refused: ${verified.detail}`);
          o.bus.audit({ stage: 'ingest', outcome: 'rejected', correlationId, source: sourceName, reason: verified.reason });
          result = answer(401, correlationId, problem(401, verified.reason.replaceAll('_', '-') as ProblemSlug, 'Signature not verified', verified.detail, { correlationId, reason: verified.reason }));
        } else {
          o.metrics.count.secretUsed(`${sourceName}\u0000${verified.secretIndex}`, { source: sourceName, index: String(verified.secretIndex) });
          result = await storeAuthentic(source, headers, body, correlationId, verified.deliveryId, { checkDedup: true, quarantine: true, via: 'webhook' });
        }
      }
      o.metrics.seconds.observe({ source: source ? sourceName : '(unknown)', status: String(result.status) }, (performance.now() - started) / 1000);
      return result;
    },
    /** Puts a quarantined payload through the pipeline again (after its schema was fixed); no signature check, no dedup check. */
    async replayQuarantined(entry: DeadLetter): Promise<Answer> {
      const name = entry.original.subject.split('.').at(-1) ?? '';
      const source = sources.get(name);
      if (!source) throw new BusError('SOURCE_UNKNOWN', 'permanent', `DLQ entry ${entry.id} belongs to source "${name}", which this ingest does not know`);
      return storeAuthentic(source, entry.original.headers, Buffer.from(entry.original.data), entry.correlationId ?? correlationIdOf({}),
        entry.original.msgId, { checkDedup: false, quarantine: false, via: 'replay' });
    },
    /**
     * A change the bus listed itself from the source's API (`changes.list`): the same
     * pipeline as a webhook — parse, dedup (bucket and Nats-Msg-Id), validate (quarantine
     * when invalid), store, audit — without signature verification. The event id is the one
     * the webhook would have had, so a delivery that did arrive is a duplicate.
     * `dryRun`: nothing is written; the answer's status is `would-store`, `duplicate` or
     * `would-quarantine`.
     */
    async receiveListed(sourceName: string, item: ListedItem, opts: { dryRun?: boolean; runId?: string } = {}): Promise<Answer> {
      const source = sources.get(sourceName);
      if (!source) throw new BusError('SOURCE_UNKNOWN', 'permanent', `no source is named "${sourceName}" in this intake. Known: ${[...sources.keys()].join(', ')}`);
      if (item?.payload === undefined) {
        throw new BusError('SOURCE_CHANGES_INVALID', 'permanent', `source "${sourceName}": a listed item has no payload; changes.list must return { payload, headers? } per item`);
      }
      const headers: Headers = Object.fromEntries(Object.entries(item.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      // a string is the raw body as the webhook carried it (its hash is then the webhook's when there is no delivery id)
      if (typeof item.payload === 'string' && !isJson(item.payload)) {
        throw new BusError('SOURCE_CHANGES_INVALID', 'permanent', `source "${sourceName}": a listed item's payload is a string but not JSON text; return the parsed payload or the raw JSON body`);
      }
      const body = Buffer.from(typeof item.payload === 'string' ? item.payload : JSON.stringify(item.payload));
      return storeAuthentic(source, headers, body, correlationIdOf(headers), unsignedDeliveryId(source, headers),
        { checkDedup: true, quarantine: true, via: 'listing', dryRun: opts.dryRun, runId: opts.runId });
    },
  };
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function isNatsError(err: unknown): boolean {
  const name = (err as Error)?.name ?? '';
  return /Timeout|NoResponders|ClosedConnection|RequestError|JetStream/.test(name);
}

export type Intake = ReturnType<typeof createIntake>;

import { type Bus, type Consumption, deadLetter, done, ensureConsumer, type HandlerContext, type Outcome, readRange, retryAfter } from '@bus/bus';
import { commandHeaders, type Connector, type DeliveryCommand, type MappedCommand, type SchemaRegistry, type Subscription, subscriptionsFor, toCommands } from '@bus/connectors';
import { encode, type Envelope } from '@bus/envelope';
import { BusError, ConfigError } from '@bus/errors';
import type { AnySource, Refetched } from '@bus/intake';
import { labelFolder, type Logger } from '@bus/observability';
import { workerConsumer } from '@bus/streams';
import type { TransformMetrics } from './metrics.js';
import { createRefetcher } from './refetch.js';
import { createSharedEvents } from './shared-events.js';

export interface TransformerOptions {
  bus: Bus;
  connectors: Connector[];
  schemas: SchemaRegistry;
  log: Logger;
  metrics: TransformMetrics;
  /** Messages handled at once per connector. Default 32. */
  concurrency?: number;
  /** The sources, for refetch (subscriptions with `refetch`, sources with `refetch.always`). Default none. */
  sources?: readonly AnySource[];
  /** Where the sources' API settings are read from (refetch). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** For the sources' APIs (tests). */
  fetchFn?: typeof fetch;
}

/** The durable consumer of one connector on EVENTS. */
export const transformDurable = (connector: string) => `transform-${connector}`;

/** The one EVENTS subject a connector takes, when it takes a single source+type (nats-server 2.9: one filter per consumer). */
function onlySubject(bus: Bus, connector: Connector): string | undefined {
  const only = connector.subscribes.length === 1 && connector.subscribes[0]!.source ? connector.subscribes[0]! : undefined;
  return only ? bus.names.subjects.event(only.source!, only.type) : undefined;
}

/**
 * One durable consumer per connector on EVENTS, so a slow or broken connector holds up no
 * other. Per event: validate → filter → map (ownership applied) → publish commands to
 * DELIVERIES (Nats-Msg-Id = command id) → audit → ack. No dedup state of its own (issue #16,
 * docs/architecture.md → Dedup): an event handled twice publishes the same command ids, which
 * DELIVERIES' duplicate window stores once, and past it deliver's applied versions skip.
 */
export function createTransformer(o: TransformerOptions) {
  const warnedDrift = new Set<string>();
  // metric labels from input stay bounded: types the catalog subscribes to, 50 drifted field names, then `other`
  const typeLabel = labelFolder(o.connectors.flatMap((c) => c.subscribes.map((s) => s.type)));
  const fieldLabel = labelFolder([], 50);
  // every connector's consumer gets each event: decoded and validated once, shared read-only
  const filters = o.connectors.map((c) => onlySubject(o.bus, c));
  const shared = createSharedEvents({ schemas: o.schemas, takers: (subject) => filters.filter((f) => f === undefined || f === subject).length });
  const refetcher = createRefetcher({ sources: o.sources ?? [], env: o.env ?? process.env, fetchFn: o.fetchFn });
  // a subscription that wants the current record from a named source that cannot give it is a definition error: said now
  // (when the caller gave the sources; otherwise such an event is dead-lettered when it comes, below)
  for (const c of o.sources ? o.connectors : []) {
    for (const sub of c.subscribes) {
      if (!sub.refetch || !sub.source) continue;
      const s = o.sources?.find((x) => x.name === sub.source);
      if (!s?.refetch || !s.api) throw new ConfigError(`connector "${c.name}": subscription ${sub.type} asks for refetch, but source "${sub.source}" ${s ? 'declares no refetch (and api)' : 'is not in the catalog'}`);
    }
  }
  const refetching = (sub: Subscription, source: AnySource | undefined) => !!source && (!!sub.refetch || !!source.refetch?.always);

  /**
   * One event for one connector. With `replayTag` (bus replay) the command ids get the tag, so a
   * replay is not swallowed by the stream's dedup window; deliver's version guard still keeps a
   * target from getting anything twice.
   */
  // the event's id and entity were indexed with its `ingest stored` record (ingest and @bus/client write one for every event)
  const indexed = { eventIndexed: true };

  async function handle(connector: Connector, env: Envelope, ctx: Pick<HandlerContext, 'log' | 'seq'>, replayTag?: string): Promise<Outcome> {
    const labels = { connector: connector.name, type: typeLabel(env.type) };
    const subs = subscriptionsFor(connector, env);
    if (subs.length === 0) {
      o.metrics.skipped.inc({ ...labels, reason: 'not_subscribed' });
      return done();
    }
    // refetch: the source's current record replaces the payload (thin or late events) for the subscriptions that want it
    const source = refetcher.sourceOf(env);
    if (!source && subs.some((s) => s.refetch)) {
      o.metrics.invalid.inc({ ...labels, reason: 'refetch' });
      return deadLetter('permanent', 'TRANSFORM_REFETCH_UNAVAILABLE', `${connector.name} maps ${env.type} from the source's current record, but source "${env.source}" ` +
        `${o.sources ? 'declares no refetch' : 'was not given to this transformer'}: nothing mapped. Give the source refetch (and api), then: bus dlq replay --connector ${connector.name}`, { eventId: env.id });
    }
    let fetched: Refetched | undefined;
    if (subs.some((s) => refetching(s, source))) {
      const what = `${env.entity.type}/${env.entity.id} from ${env.source}`;
      const started = Date.now();
      try {
        fetched = await refetcher.fetch(source!, env);
      } catch (err) {
        const e = err instanceof BusError ? err : new BusError('TRANSFORM_REFETCH_FAILED', 'transient', (err as Error).message, { cause: err });
        o.metrics.invalid.inc({ ...labels, reason: 'refetch' });
        o.bus.audit({ stage: 'transform', outcome: 'refetch-failed', correlationId: env.correlationId, eventId: env.id, connector: connector.name, source: env.source,
          entity: env.entity, version: env.version, failureClass: e.failureClass, code: e.code, reason: e.message, durationMs: Date.now() - started }, indexed);
        if (e.failureClass === 'transient' || e.failureClass === 'ambiguous') return retryAfter(2_000, `refetching ${what}: ${e.message}`, { failureClass: 'transient', code: e.code });
        return deadLetter(e.failureClass, e.code, `refetching ${what} for ${connector.name} failed: ${e.message}. Fix it, then: bus dlq replay --connector ${connector.name}`, { eventId: env.id });
      }
      o.bus.audit({ stage: 'transform', outcome: 'gone' in fetched ? 'refetch-gone' : 'refetched', correlationId: env.correlationId, eventId: env.id, connector: connector.name,
        source: env.source, entity: env.entity, version: fetched.version, durationMs: Date.now() - started,
        reason: 'gone' in fetched ? `${what}: the source no longer has it; mapped to a delete` : `${what}: the current record (version ${fetched.version}) is mapped, not the event's payload (version ${env.version})`,
        details: { eventVersion: env.version, fetchedVersion: fetched.version } }, indexed);
    }
    const allRefetched = subs.every((s) => refetching(s, source));
    const fetchedData = fetched && !('gone' in fetched) ? o.schemas.validate(env.type, env.schemaVersion, fetched.data) : undefined;
    if (fetchedData?.kind === 'invalid') {
      o.metrics.invalid.inc({ ...labels, reason: 'schema' });
      return deadLetter('business', 'TRANSFORM_REFETCH_INVALID',
        `the record refetched for ${env.type} ${env.entity.type}/${env.entity.id} from ${env.source} fails the ${env.type}@${env.schemaVersion} schema: ${fetchedData.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}. Fix the source's refetch or the schema, then: bus dlq replay --connector ${connector.name}`,
        { issues: fetchedData.issues, eventId: env.id });
    }
    // the event's own payload is validated only where some subscription maps it (a thin event's payload has no record in it)
    const v = allRefetched && fetched ? (fetchedData ?? { kind: 'valid' as const, data: {} as Record<string, unknown> }) : shared.validate(env);
    if (v.kind === 'invalid') {
      o.metrics.invalid.inc({ ...labels, reason: 'schema' });
      return deadLetter('business', 'TRANSFORM_EVENT_INVALID',
        `${env.type}@${env.schemaVersion} from ${env.source} fails its schema: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}. Fix the sender or the schema, then: bus dlq replay --connector ${connector.name}`,
        { issues: v.issues, eventId: env.id });
    }
    if (v.kind === 'drift') {
      for (const field of v.unknownFields) {
        o.metrics.drift.inc({ ...labels, field: fieldLabel(field) });
        const once = `${env.type}@${env.schemaVersion}:${field}`;
        if (!warnedDrift.has(once)) {
          warnedDrift.add(once);
          ctx.log.warn({ type: env.type, field }, 'schema drift: a field the schema does not know (warned once per type and field; the event flows)');
        }
      }
    }
    const commands: DeliveryCommand[] = [];
    let filtered = false;
    for (const sub of subs) {
      if (sub.filter && !sub.filter(v.data, env)) {
        filtered = true;
        continue;
      }
      try {
        if (fetched && refetching(sub, source)) {
          const at = { ...env, version: fetched.version };
          if ('gone' in fetched) {
            const gone = typeof sub.refetch === 'object' && sub.refetch.gone ? sub.refetch.gone : (e: Envelope): MappedCommand => ({ action: 'delete', target: e.entity });
            commands.push(...toCommands(connector, { ...sub, map: () => gone(at) }, {}, at));
          } else {
            const data = fetchedData ? fetchedData.data : fetched.data;
            commands.push(...toCommands(connector, sub, data, { ...at, data }));
          }
        } else {
          commands.push(...toCommands(connector, sub, v.data, env));
        }
      } catch (err) {
        o.metrics.invalid.inc({ ...labels, reason: 'mapping' });
        return deadLetter('business', 'TRANSFORM_MAPPING_FAILED',
          `mapping ${env.type} for ${connector.name} threw: ${(err as Error).message}. Fix the connector's mapping, then: bus dlq replay --connector ${connector.name}`,
          { eventId: env.id });
      }
    }
    if (commands.length === 0) {
      o.metrics.skipped.inc({ ...labels, reason: filtered ? 'filter' : 'no_command' });
      return done();
    }
    for (const cmd of commands) {
      // a PublishError is thrown on: transient ones retry the event (the command id dedups), permanent ones dead-letter it
      await o.bus.publish(o.bus.names.subjects.delivery(connector.name, cmd.target.type, cmd.entity), encode(cmd), {
        msgId: replayTag ? `${cmd.id}.${replayTag}` : cmd.id,
        headers: commandHeaders(cmd, env.id),
      });
      o.metrics.commands.inc(labels);
    }
    o.metrics.transformed.inc(labels);
    o.bus.audit({ stage: 'transform', outcome: 'transformed', correlationId: env.correlationId, eventId: env.id, connector: connector.name,
      entity: env.entity, version: env.version, details: { commands: commands.map((c) => c.id) } }, indexed);
    return done();
  }

  return {
    handle,
    /**
     * Re-delivers a range of EVENTS to one connector (a new target, or after a fix): every
     * event from `fromSeq` (or stored since `sinceMs`) up to `toSeq` goes through this
     * connector's mapping again. Reads with an ordered consumer that starts at the range
     * (by time: deliver_policy by_start_time), so `--since 1h` on a year of events reads an
     * hour of them; a connector on one source+type reads only that subject. Streams; reports
     * progress every 1 000 events. `firstSeq`/`lastSeq`: the first and last event read.
     */
    async replay(connector: Connector, range: { fromSeq?: number; sinceMs?: number; toSeq?: number }, onProgress?: (n: number, seq: number) => void) {
      const tag = `replay${Date.now().toString(36)}`;
      let n = 0;
      let outcomes = { handled: 0, invalid: 0 };
      let firstSeq: number | undefined;
      let lastSeq: number | undefined;
      for await (const m of readRange(o.bus.js, o.bus.jsm, o.bus.names.streams.events, { ...range, filterSubject: onlySubject(o.bus, connector) })) {
        firstSeq ??= m.seq;
        lastSeq = m.seq;
        const outcome = await handle(connector, shared.decode(m.data, m.seq, m.subject), { log: o.log, seq: m.seq }, tag);
        // an event that fails its schema or mapping now is counted, not dead-lettered again: it already was, live
        outcomes = outcome.kind === 'done' ? { ...outcomes, handled: outcomes.handled + 1 } : { ...outcomes, invalid: outcomes.invalid + 1 };
        if (++n % 1_000 === 0) onProgress?.(n, m.seq);
      }
      return { events: n, ...outcomes, firstSeq, lastSeq };
    },
    /** Ensures each connector's consumer and starts consuming; returns the running consumptions. */
    async start(): Promise<Map<string, Consumption>> {
      const running = new Map<string, Consumption>();
      for (const connector of o.connectors) {
        const durable = transformDurable(connector.name);
        // nats-server 2.9 has one filter subject per consumer: a connector on a single
        // source+type filters exactly; otherwise it reads all events and skips what it does not take
        await ensureConsumer(o.bus.jsm, workerConsumer({
          stream: o.bus.names.streams.events, durable, description: `transform for connector ${connector.name}`,
          filterSubject: onlySubject(o.bus, connector) ?? o.bus.names.subjects.all.events,
          // maxDeliver: workerConsumer's backstop (20, counted by consume), as for the projector. A failed
          // mapping is dead-lettered at once (business); what is retried is NATS trouble (a full or
          // leaderless DELIVERIES, a KV timeout), which 10 deliveries (~2 min of backoff) dead-lettered too soon
        }));
        running.set(connector.name, await o.bus.consume<Envelope>({
          stream: o.bus.names.streams.events, durable, stage: 'transform', connector: connector.name,
          concurrency: o.concurrency ?? 32, decode: (data, ctx) => shared.decode(data, ctx.seq, ctx.subject), handler: (env, ctx) => handle(connector, env, ctx),
        }));
      }
      return running;
    },
  };
}
export type Transformer = ReturnType<typeof createTransformer>;

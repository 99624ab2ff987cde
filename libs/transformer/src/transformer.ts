import { type Bus, type Consumption, deadLetter, done, ensureConsumer, type HandlerContext, type Outcome, readRange } from '@bus/bus';
import { commandHeaders, type Connector, type DeliveryCommand, type SchemaRegistry, subscriptionsFor, toCommands } from '@bus/connectors';
import { decodeEnvelope, encode, type Envelope } from '@bus/envelope';
import type { Logger } from '@bus/observability';
import { workerConsumer } from '@bus/streams';
import type { TransformMetrics } from './metrics.js';

export interface TransformerOptions {
  bus: Bus;
  connectors: Connector[];
  schemas: SchemaRegistry;
  log: Logger;
  metrics: TransformMetrics;
  /** Messages handled at once per connector. Default 32. */
  concurrency?: number;
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

  /**
   * One event for one connector. With `replayTag` (bus replay) the command ids get the tag, so a
   * replay is not swallowed by the stream's dedup window; deliver's version guard still keeps a
   * target from getting anything twice.
   */
  async function handle(connector: Connector, env: Envelope, ctx: Pick<HandlerContext, 'log' | 'seq'>, replayTag?: string): Promise<Outcome> {
    const labels = { connector: connector.name, type: env.type };
    const subs = subscriptionsFor(connector, env);
    if (subs.length === 0) {
      o.metrics.skipped.inc({ ...labels, reason: 'not_subscribed' });
      return done();
    }
    const v = o.schemas.validate(env.type, env.schemaVersion, env.data);
    if (v.kind === 'invalid') {
      o.metrics.invalid.inc({ ...labels, reason: 'schema' });
      return deadLetter('business', 'TRANSFORM_EVENT_INVALID',
        `${env.type}@${env.schemaVersion} from ${env.source} fails its schema: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}. Fix the sender or the schema, then: bus dlq replay --connector ${connector.name}`,
        { issues: v.issues, eventId: env.id });
    }
    if (v.kind === 'drift') {
      for (const field of v.unknownFields) {
        o.metrics.drift.inc({ ...labels, field });
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
        commands.push(...toCommands(connector, sub, v.data, env));
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
      entity: env.entity, version: env.version, details: { commands: commands.map((c) => c.id) } });
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
        const outcome = await handle(connector, decodeEnvelope(m.data), { log: o.log, seq: m.seq }, tag);
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
          concurrency: o.concurrency ?? 32, decode: decodeEnvelope, handler: (env, ctx) => handle(connector, env, ctx),
        }));
      }
      return running;
    },
  };
}
export type Transformer = ReturnType<typeof createTransformer>;

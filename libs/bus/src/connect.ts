import { readFileSync } from 'node:fs';
import { encodeEnvelope, envelopeHeaders, type Envelope } from '@bus/envelope';
import type { BusMetrics, Logger, Readiness } from '@bus/observability';
import { names as namesFor, topology as defaultTopology, type Names, type Topology } from '@bus/streams';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import type { BusConfig } from './config.js';
import { consume, type ConsumeOptions, type Consumption } from './consume.js';
import type { AuditRecord } from './audit.js';
import { type AuditWriteOptions, createAuditWriter } from './audit-writer.js';
import { type DeadLetter, encodeDeadLetter } from './dead-letter.js';
import './nats-encode.js'; // strings to bytes without a TextEncoder allocation each (see there)
import './nats-request.js'; // one Error less per request (see there)
import { encodedHeaders } from './js-ack.js';
import { fasterKvCalls, readsDirect } from './kv-calls.js';
import { createPublish, type Publish, type Published } from './publish.js';
import { serverCaveats } from './server-caveats.js';
import { watchStoreEpochs } from './store-epoch.js';
import { applyTopology, type TopologyReport } from './topology.js';

export interface ConnectOptions {
  config: BusConfig;
  /** Shown to the server as the connection name; use the service name. */
  name: string;
  log: Logger;
  metrics?: BusMetrics;
  /** Gets a `nats` check (and `topology` once applyTopology runs). */
  readiness?: Readiness;
  /** Keep trying until NATS answers (services: true, the default) or fail at once (CLI). */
  waitOnFirstConnect?: boolean;
}

/** A connected bus: the only object in a service that talks to NATS. */
export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: Names;
  config: BusConfig;
  publish: Publish;
  /** Publishes an envelope with its headers; Nats-Msg-Id = envelope id unless msgId is given. */
  publishEnvelope(subject: string, env: Envelope, opts?: { msgId?: string; headers?: Record<string, string> }): Promise<Published>;
  /**
   * Writes one audit record without waiting for a PubAck: audit must never slow down or break
   * the work it records. Records wait until the end of the turn (or BUS_AUDIT_FLUSH_MS) and go out
   * coalesced per correlation (libs/bus/src/audit-writer.ts), always before the acks of the steps
   * they record (consume flushes first); close() sends what waits.
   */
  audit(record: Omit<AuditRecord, 'at'> & { at?: string }, opts?: AuditWriteOptions): void;
  /**
   * Stores into a stream without awaiting the PubAck (core publish). For writes whose loss
   * is covered elsewhere (audit, dedup hints); never for events or commands.
   */
  publishUnconfirmed(subject: string, data: Uint8Array, opts: { msgId?: string; headers?: Record<string, string> }): void;
  /** Sends an entry to the DLQ (`dlq.<stage>.<connector>`), deduplicated by its id. */
  deadLetter(entry: DeadLetter): Promise<Published>;
  /** Opens (and caches) a KV bucket created by applyTopology. */
  kv(bucket: string): Promise<KV>;
  /** Applies the topology (default: streams/ with this config), logs and reports drift. */
  applyTopology(topo?: Topology): Promise<TopologyReport>;
  consume<T>(opts: ConsumeOptions<T>): Promise<Consumption>;
  /** Drains subscriptions and closes; safe to call twice. */
  close(): Promise<void>;
}

function connectionOptions(config: BusConfig, name: string, waitOnFirstConnect: boolean): ConnectionOptions {
  const opts: ConnectionOptions = {
    servers: config.NATS_URL.split(',').map((s) => s.trim()),
    name,
    maxReconnectAttempts: -1, // reconnect forever: an outage must not kill the service
    reconnectTimeWait: 500,
    waitOnFirstConnect, // services start before NATS does and readiness says they wait; the CLI fails fast
    pingInterval: 10_000,
    // the client would capture two stack traces per request "in case it fails": 11–18 % of a
    // service's CPU (bench profiles); errors keep their classes, only the caller's frames go
    noAsyncTraces: true,
  };
  if (config.NATS_USER) Object.assign(opts, { user: config.NATS_USER, pass: config.NATS_PASSWORD });
  if (config.NATS_TOKEN) opts.token = config.NATS_TOKEN;
  if (config.NATS_NKEY_SEED) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(config.NATS_NKEY_SEED));
  if (config.NATS_CREDS_FILE) opts.authenticator = credsAuthenticator(readFileSync(config.NATS_CREDS_FILE));
  if (config.NATS_TLS_CA_FILE || config.NATS_TLS_CERT_FILE) {
    opts.tls = {
      ...(config.NATS_TLS_CA_FILE ? { caFile: config.NATS_TLS_CA_FILE } : {}),
      ...(config.NATS_TLS_CERT_FILE ? { certFile: config.NATS_TLS_CERT_FILE, keyFile: config.NATS_TLS_KEY_FILE } : {}),
    };
  }
  return opts;
}

/** Logs every connection status change and keeps the `nats` readiness check and metric current. */
async function watchStatus(nc: NatsConnection, o: ConnectOptions): Promise<void> {
  const servers = o.config.NATS_URL;
  for await (const s of nc.status()) {
    o.metrics?.natsStatus.inc({ type: s.type });
    switch (s.type) {
      case 'disconnect':
        o.metrics?.natsConnected.set(0);
        o.readiness?.set('nats', false, `disconnected from NATS (${servers}); reconnecting`);
        o.log.warn({ server: s.server }, 'NATS disconnected; reconnecting');
        break;
      case 'reconnect':
        o.metrics?.natsConnected.set(1);
        o.readiness?.set('nats', true);
        o.log.info({ server: s.server }, 'NATS reconnected');
        break;
      case 'error':
        o.log.error({ err: s.error }, 'NATS connection error');
        break;
      case 'ldm':
        o.log.warn({ server: s.server }, 'NATS server entering lame duck mode; will move to another');
        break;
      case 'reconnecting':
      case 'ping':
        break;
      default:
        o.log.debug({ status: s.type }, 'NATS status');
    }
  }
}

/**
 * Connects to NATS from configuration and returns the Bus. Resolves once connected
 * (waiting as long as it takes: readiness reports it meanwhile).
 */
export async function connectBus(o: ConnectOptions): Promise<Bus> {
  o.readiness?.require('nats', `connecting to NATS at ${o.config.NATS_URL}`);
  const nc = await connect(connectionOptions(o.config, o.name, o.waitOnFirstConnect ?? true));
  o.metrics?.natsConnected.set(1);
  o.readiness?.set('nats', true);
  o.log.info({ server: nc.getServer(), version: nc.info?.version }, 'connected to NATS');
  for (const caveat of serverCaveats(nc.info?.version, o.config.BUS_REPLICAS)) o.log.warn({ version: nc.info?.version, replicas: o.config.BUS_REPLICAS }, caveat);
  void watchStatus(nc, o);
  const storeEpoch = watchStoreEpochs(nc, o.config.BUS_REPLICAS > 1);

  const js = jetstream(nc);
  // JetStream off or not answering (a cluster without a meta leader): close the connection, or
  // the caller's process never exits (seen: `bus streams apply` hung after printing the error)
  const jsm = await jetstreamManager(nc).catch(async (err: unknown) => {
    await nc.close();
    throw err;
  });
  const n = namesFor(o.config.BUS_PREFIX);
  const publish = createPublish(nc, o.config.BUS_PUBLISH_TIMEOUT_MS, o.metrics);
  const kvm = new Kvm(js);
  const buckets = new Map<string, Promise<KV>>();
  const kv = (bucket: string) => {
    let b = buckets.get(bucket);
    if (!b) {
      b = kvm.open(bucket).then(async (opened) => {
        const info = await jsm.streams.info(`KV_${bucket}`).catch(() => undefined); // missing: nats.js's answers, as before
        return fasterKvCalls(opened, nc, bucket, readsDirect(info?.config, o.config.BUS_REPLICAS));
      });
      b.catch(() => buckets.delete(bucket));
      buckets.set(bucket, b);
    }
    return b;
  };
  const deadLetter = (entry: DeadLetter) =>
    publish(n.subjects.dlq(entry.stage, entry.connector), encodeDeadLetter(entry), {
      msgId: `dlq.${entry.id}`,
      headers: { 'Bus-Correlation-Id': entry.correlationId ?? '', 'Bus-Failure-Class': entry.failureClass, 'Bus-Error-Code': entry.code },
    });
  let closed = false;
  const publishUnconfirmed = (subject: string, data: Uint8Array, opts: { msgId?: string; headers?: Record<string, string> }) => {
    try {
      nc.publish(subject, data, { headers: encodedHeaders({ ...opts.headers, 'Nats-Msg-Id': opts.msgId }) });
    } catch (err) {
      o.log.warn({ err, subject }, 'unconfirmed publish failed (connection closed?)');
    }
  };

  const auditWriter = createAuditWriter({
    names: n, flushMs: o.config.BUS_AUDIT_FLUSH_MS, send: (m) => publishUnconfirmed(m.subject, m.data, { headers: m.headers }),
  });

  return {
    nc, js, jsm, names: n, config: o.config, publish, kv, deadLetter,
    publishUnconfirmed,
    audit(record, opts) {
      auditWriter.write({ ...record, at: record.at ?? new Date().toISOString() }, opts);
    },
    publishEnvelope: (subject, env, opts = {}) =>
      publish(subject, encodeEnvelope(env), { msgId: opts.msgId ?? env.id, headers: { ...envelopeHeaders(env), ...opts.headers } }),
    async applyTopology(topo) {
      o.readiness?.require('topology', 'applying streams/ definitions');
      const report = await applyTopology(jsm, topo ?? defaultTopology({ prefix: o.config.BUS_PREFIX, replicas: o.config.BUS_REPLICAS }));
      o.metrics?.topologyDrift.set(report.drift.length);
      for (const d of report.drift) o.log.error(d, `topology drift: ${d.resource} ${d.field} differs from streams/ and was not changed`);
      if (report.created.length || report.updated.length) o.log.info({ created: report.created, updated: report.updated }, 'topology applied');
      // drift is reported, not fatal: the bus still works on the existing definition
      o.readiness?.set('topology', true);
      return report;
    },
    consume: (opts) =>
      consume({ js, log: o.log, metrics: o.metrics, attempts: () => kv(n.kv.attempts), deadLetter, beforeSettle: auditWriter.flush, storeEpoch }, opts),
    async close() {
      if (closed) return;
      closed = true;
      auditWriter.flush(); // drain sends it before closing
      await nc.drain().catch(() => nc.close());
    },
  };
}

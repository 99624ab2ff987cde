import type { Bus } from '@bus/bus';
import type { Activity } from './activity.js';
import { connectorStates } from './connectors.js';
import { dlqSummary } from './dlq.js';
import { type StreamStatus, streamsStatus } from './streams.js';

/** One connector on the overview: state and why, live rates, queue, DLQ, token. */
export interface ConnectorOverview {
  connector: string;
  /** `running`, `paused` or `circuit open`. */
  state: 'running' | 'paused' | 'circuit open';
  why?: string;
  inPerSec: number;
  deliveredPerSec: number;
  failedPerSec: number;
  p95DeliveryMs?: number;
  queue: number;
  inFlight: number;
  oldestPendingAgeMs?: number;
  dlq: number;
  dlqOldestAgeMs?: number;
  /** When the stored OAuth2 access token expires (none for targets without OAuth2 or before the first call). */
  tokenExpiresAt?: string;
  tokenProblem?: string;
}

/** A source with a rhythm (declared or learned): how long it has been silent, and whether that is too long. */
export interface SourceOverview {
  source: string;
  expectEverySec: number;
  silentSec?: number;
  quiet: boolean;
}

export interface Overview {
  at: string;
  connectors: ConnectorOverview[];
  streams: StreamStatus[];
  /** Sources reconcile's watcher keeps a rhythm for (the same as `bus streams status`). */
  sources: SourceOverview[];
}

/** Everything the console's overview shows, from the same calls as `bus connectors list`, `streams status` and `dlq list --summary`. */
export async function overview(bus: Bus, activity?: Activity): Promise<Overview> {
  const [{ tokenState }, { sourcesRhythm }] = await Promise.all([import('@bus/auth'), import('@bus/intake')]);
  const [states, streams, dlq, tokens, rhythms] = await Promise.all([connectorStates(bus), streamsStatus(bus), dlqSummary(bus).catch(() => []), bus.kv(bus.names.kv.tokens),
    sourcesRhythm(bus).catch(() => [])]);
  const sources = rhythms.map((r) => ({ source: r.source, expectEverySec: r.expectEverySec, silentSec: r.silentSec, quiet: r.quiet === true }));
  const deliveries = streams.find((s) => s.stream === bus.names.streams.deliveries);
  const connectors = await Promise.all(states.map(async (c): Promise<ConnectorOverview> => {
    const consumer = deliveries?.consumers.find((x) => x.consumer === `deliver-${c.connector}`);
    const dead = dlq.filter((d) => d.connector === c.connector);
    const oldest = dead.map((d) => d.oldestAgeMs).filter((a): a is number => a !== undefined);
    const token = await tokenState(tokens, c.connector).catch(() => undefined);
    const rates = activity?.rates(c.connector) ?? { inPerSec: 0, deliveredPerSec: 0, failedPerSec: 0 };
    const circuitOpen = c.circuit?.state === 'open';
    return {
      connector: c.connector,
      state: c.paused ? 'paused' : circuitOpen ? 'circuit open' : 'running',
      why: c.paused ? `${c.reason ?? ''}${c.by ? ` (${c.by}${c.at ? `, ${c.at.slice(0, 19).replace('T', ' ')}` : ''})` : ''}` : circuitOpen ? `since ${c.circuit!.at} (${c.circuit!.by})` : undefined,
      inPerSec: rates.inPerSec, deliveredPerSec: rates.deliveredPerSec, failedPerSec: rates.failedPerSec, p95DeliveryMs: rates.p95Ms,
      queue: c.pending, inFlight: c.ackPending, oldestPendingAgeMs: consumer?.oldestPendingAgeMs,
      dlq: dead.reduce((n, d) => n + d.entries, 0), dlqOldestAgeMs: oldest.length ? Math.max(...oldest) : undefined,
      tokenExpiresAt: token?.expiresAt,
      tokenProblem: token?.refused ? `refresh token refused at ${token.refused.at}` : token?.lastError ? `last refresh error: ${token.lastError.message}` : undefined,
    };
  }));
  return { at: new Date().toISOString(), connectors, streams, sources };
}

import { type Bus, decodeDeadLetter } from '@bus/bus';
import type { Logger } from '@bus/observability';
import type { Msg } from '@nats-io/nats-core';
import type { Intake } from './intake.js';

/** What `bus dlq replay` sends for a quarantined ingest payload, and what it gets back. */
export interface ReplayRequest {
  dlqSeq: number;
}
export interface ReplayReply {
  ok: boolean;
  status?: number;
  body?: Record<string, unknown>;
  error?: string;
}

/**
 * Answers replay requests for quarantined payloads (core NATS, queue group `ingest`): the
 * payload goes through the pipeline with the schemas this ingest has now; once stored, its
 * DLQ entry is deleted. Still invalid → it stays, and the answer says why.
 */
export function serveReplays(bus: Bus, intake: Intake, log: Logger): () => void {
  const enc = new TextEncoder();
  const sub = bus.nc.subscribe(bus.names.subjects.ingestReplay, {
    queue: 'ingest',
    callback: (err, msg) => void handle(err, msg),
  });
  async function handle(err: Error | null, msg: Msg): Promise<void> {
    {
      if (err) return void log.warn({ err }, 'replay subscription error');
      const reply = (r: ReplayReply) => void msg.respond(enc.encode(JSON.stringify(r)));
      try {
        const { dlqSeq } = JSON.parse(new TextDecoder().decode(msg.data)) as ReplayRequest;
        const stored = await bus.jsm.streams.getMessage(bus.names.streams.dlq, { seq: dlqSeq });
        if (!stored) return reply({ ok: false, error: `no DLQ entry at sequence ${dlqSeq}` });
        const entry = decodeDeadLetter(stored.data);
        if (entry.stage !== 'ingest') return reply({ ok: false, error: `DLQ entry ${dlqSeq} is from stage ${entry.stage}, not ingest` });
        const answer = await intake.replayQuarantined(entry);
        const ok = answer.status === 200 || (answer.status === 202 && answer.body.status === 'stored');
        if (ok) await bus.jsm.streams.deleteMessage(bus.names.streams.dlq, dlqSeq);
        log.info({ dlqSeq, status: answer.status, correlationId: entry.correlationId }, ok ? 'quarantined payload replayed and stored' : 'replayed payload still not storable');
        reply({ ok, status: answer.status, body: answer.body });
      } catch (e) {
        reply({ ok: false, error: (e as Error).message });
      }
    }
  }
  return () => sub.unsubscribe();
}

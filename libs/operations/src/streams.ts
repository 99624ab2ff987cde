import { type Bus, readStream, serverAtLeast, serverCaveats } from '@bus/bus';
import { topology } from '@bus/streams';

/** Where a consumer's oldest unfinished message is, and how old it is. */
async function oldestPendingAgeMs(bus: Bus, stream: string, fromSeq: number): Promise<number | undefined> {
  // the first message still there from the consumer's ack floor on (work-queue acks leave gaps)
  for await (const m of readStream(bus.jsm, stream, { fromSeq })) return Date.now() - Date.parse(m.timestamp);
  return undefined;
}

export interface StreamStatus {
  stream: string;
  messages: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  consumers: {
    consumer: string;
    pending: number;
    ackPending: number;
    redelivered: number;
    oldestPendingAgeMs?: number;
  }[];
}

/** Per stream and consumer: messages, bytes, pending, redelivered, oldest pending age. */
export async function streamsStatus(bus: Bus): Promise<StreamStatus[]> {
  const out: StreamStatus[] = [];
  for (const def of topology({ prefix: bus.config.BUS_PREFIX, replicas: bus.config.BUS_REPLICAS }).streams) {
    const info = await bus.jsm.streams.info(def.name).catch(() => undefined);
    if (!info) {
      out.push({ stream: `${def.name} (missing: run 'bus streams apply')`, messages: 0, bytes: 0, firstSeq: 0, lastSeq: 0, consumers: [] });
      continue;
    }
    const s: StreamStatus = { stream: def.name, messages: info.state.messages, bytes: info.state.bytes,
      firstSeq: info.state.first_seq, lastSeq: info.state.last_seq, consumers: [] };
    for await (const c of bus.jsm.consumers.list(def.name)) {
      const unfinished = c.num_pending + c.num_ack_pending;
      const fromSeq = Math.max(c.ack_floor.stream_seq + 1, info.state.first_seq);
      s.consumers.push({
        consumer: c.name, pending: c.num_pending, ackPending: c.num_ack_pending, redelivered: c.num_redelivered,
        oldestPendingAgeMs: unfinished > 0 ? await oldestPendingAgeMs(bus, def.name, fromSeq) : undefined,
      });
    }
    out.push(s);
  }
  return out;
}

/** Which mechanism keeps per-entity order (docs/ordering.md), and what the server would allow. */
export function orderingMechanism(bus: Bus): string {
  const version = bus.nc.info?.version ?? 'unknown';
  const pcgroups = serverAtLeast(version, 2, 11);
  return `per-entity leases in ${bus.names.kv.versions} (compare-and-set, renewed during each call, fenced at commit) on nats-server ${version}`
    + (pcgroups ? ' — this server has partitioned consumer groups (2.11+); the bus does not use them yet' : ' — partitioned consumer groups need nats-server 2.11+')
    + serverCaveats(bus.nc.info?.version, bus.config.BUS_REPLICAS).map((c) => `\n  ! ${c}`).join('');
}

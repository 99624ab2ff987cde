// What the bus still holds for a connector: its dead letters, and work not finished.
import { type Bus, decodeDeadLetter, readStream, subjectMessages } from '@bus/bus';
import type { BusCounts } from './invariants.js';

/** A durable consumer's unfinished messages: not yet delivered, or delivered and not acknowledged. */
async function consumerBacklog(bus: Bus, stream: string, keep: (filter: string) => boolean): Promise<{ total: number; details: string[] }> {
  let total = 0;
  const details: string[] = [];
  for await (const c of bus.jsm.consumers.list(stream)) {
    const filters = [c.config.filter_subject ?? '', ...(c.config.filter_subjects ?? [])].filter(Boolean);
    if (!c.config.durable_name || !filters.some(keep)) continue;
    const unfinished = c.num_pending + c.num_ack_pending;
    total += unfinished;
    if (unfinished) details.push(`consumer ${stream}/${c.name}: ${c.num_pending} pending, ${c.num_ack_pending} in flight`);
    if (stream.endsWith('DELIVERIES')) {
      details.push(`consumer ${stream}/${c.name}: delivered up to ${c.delivered.stream_seq}, ack floor ${c.ack_floor.stream_seq}, redelivered ${c.num_redelivered}, waiting ${c.num_waiting}`);
    }
  }
  return { total, details };
}

/**
 * Work not finished for `connector`: the commands still stored in DELIVERIES (a work queue:
 * a command stays until done), and the unfinished messages of the durable consumers on its
 * DELIVERIES subjects and of every durable consumer on EVENTS (the transform consumers).
 * Consumer names are not assumed: whatever consumes those subjects counts.
 */
export async function readPending(bus: Bus, connector: string): Promise<{ pending: number; details: string[] }> {
  const deliveries = bus.names.subjects.delivery(connector, '');
  const stored = await bus.jsm.streams.info(bus.names.streams.deliveries, { subjects_filter: `${deliveries}>` });
  // the subject index can count a message that is gone (nats-server 2.9 after a SIGKILL): count what a read finds
  const indexed = Object.values(stored.state.subjects ?? {}).reduce((s, n) => s + n, 0);
  const seqs = indexed ? await storedSeqs(bus, `${deliveries}>`) : [];
  const commands = seqs.length >= STORED_CAP ? indexed : seqs.length;
  const details = commands ? [`${commands} commands still stored in ${bus.names.streams.deliveries} for ${connector}: seq ${seqs.slice(0, 20).join(', ')}`] : [];
  const onDeliveries = await consumerBacklog(bus, bus.names.streams.deliveries, (f) => f.startsWith(deliveries) || f === bus.names.subjects.all.deliveries);
  const onEvents = await consumerBacklog(bus, bus.names.streams.events, () => true);
  details.push(...onDeliveries.details, ...onEvents.details);
  // a stored command is normally also counted by its consumer: count the larger, not both
  return { pending: Math.max(commands, onDeliveries.total) + onEvents.total, details };
}

/** How many DLQ entries `connector` has (any stage), from the stream's subject counts: cheap enough to poll. */
export async function countDeadLetters(bus: Bus, connector: string): Promise<number> {
  const info = await bus.jsm.streams.info(bus.names.streams.dlq, { subjects_filter: bus.names.subjects.dlq('*', connector) });
  return Object.values(info.state.subjects ?? {}).reduce((s, n) => s + n, 0);
}

/** Every DLQ entry for `connector` (any stage), one readable line each. */
export async function readDeadLetters(bus: Bus, connector: string): Promise<string[]> {
  const lines: string[] = [];
  for await (const m of readStream(bus.jsm, bus.names.streams.dlq)) {
    const e = decodeDeadLetter(m.data);
    if (e.connector === connector) lines.push(`dlq ${e.stage} ${connector}: ${e.code} (${e.failureClass}) after ${e.attempts} attempts: ${e.reason.slice(0, 160)}`);
  }
  return lines;
}

/** What the bus still holds for `connector`: its dead letters and its unfinished work. */
export async function readBusCounts(bus: Bus, connector: string): Promise<BusCounts> {
  const dead = await readDeadLetters(bus, connector);
  const { pending, details } = await readPending(bus, connector);
  // what is stuck first (a few lines), then the dead letters
  return { deadLettered: dead.length, pending, details: [...details, ...dead] };
}

const STORED_CAP = 200;

/** The sequences stored under a subject filter (at most STORED_CAP), read message by message. */
async function storedSeqs(bus: Bus, filter: string): Promise<number[]> {
  const seqs: number[] = [];
  for await (const m of subjectMessages(bus.jsm, bus.names.streams.deliveries, filter, { max: STORED_CAP })) seqs.push(m.seq);
  return seqs;
}

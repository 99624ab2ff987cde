import type { Bus } from '@bus/bus';
import type { Logger } from '@bus/observability';
import type { ApplyCounts } from './record.js';

export interface RebuildOptions {
  /** Required. A connected bus. */
  bus: Bus;
  /** Default: silent. */
  log?: Logger;
  /** First EVENTS sequence to replay. Default: the stream's first. Entries from events before it are copied from the active generation. */
  fromSeq?: number;
  /** Instead of fromSeq: replay events stored since this time (ms since epoch); the server finds the sequence. */
  sinceMs?: number;
  /** Abandon an unfinished rebuild (its bucket is deleted) and start a new one. Default false: it is resumed. */
  restart?: boolean;
  /** Called every `progressEveryMs` and when the phase changes. */
  onProgress?: (p: RebuildProgress) => void;
  /** Default 1 000 ms; also how often the checkpoint is saved. */
  progressEveryMs?: number;
  /** Aborting stops the rebuild at a checkpoint; a later call resumes there. */
  signal?: AbortSignal;
  /** KV writes in flight at once (each a different entity; an entity's events in one pull batch make one write). Default 512. */
  concurrency?: number;
  /**
   * Caught up = at most this many events left (a busy stream is never at exactly zero):
   * then the pointer switches and the final pass applies the rest. Default 256.
   */
  catchUpEvents?: number;
  /**
   * Awaited at each step of the switch (see RebuildStep), before the rebuild goes on. For tests
   * that store events at each step, and for tooling. Default none.
   */
  onStep?: (step: RebuildStep) => void | Promise<void>;
  /**
   * Keep the replaced generation, frozen, for a rollback (deleted when the next rebuild starts).
   * Default false: it is deleted as soon as the new one is active and caught up, so a rebuild
   * leaves one generation's worth of keys in nats-server, not two (issue #16).
   */
  keepPrevious?: boolean;
}

/**
 * The steps of a rebuild around its switch, in order: `replay` (seeded; the replay is about to
 * start), `caught-up` (at most catchUpEvents left, all dispatched applied; the pointer is
 * about to be read), `switching` (pointer read; about to be compared-and-set), `switched` (pointer
 * moved; the end of the final pass is about to be read), `final-pass` (end read; the final pass
 * is about to run). A resumed rebuild past its switch reports only `replay` and `final-pass`.
 */
export type RebuildStep = 'replay' | 'caught-up' | 'switching' | 'switched' | 'final-pass';

export interface RebuildProgress {
  phase: 'seeding' | 'replaying' | 'catching-up' | 'done' | 'interrupted';
  generation: number;
  /** Every event up to this sequence is applied. */
  seq: number;
  /** EVENTS' last sequence, as last seen. */
  lastSeq: number;
  /** Events read by this call. */
  events: number;
  eventsPerSec: number;
  counts: RebuildCounts;
}

/** Outcomes, plus entries copied from the active generation and events that could not be decoded (skipped, counted). */
export type RebuildCounts = ApplyCounts & { seeded: number; unreadable: number };

export interface RebuildResult {
  generation: number;
  /** The generation it replaced (switched only). */
  previous?: number;
  /** First sequence replayed by this generation, and where this call started (after a resume: the checkpoint + 1). */
  fromSeq: number;
  startedAtSeq: number;
  /** The checkpoint: every event up to here is applied. */
  lastSeq: number;
  resumed: boolean;
  switched: boolean;
  interrupted: boolean;
  events: number;
  /** KV writes made by this call: fewer than events when an entity had several in one pull batch (seeding's copies included). */
  writes: number;
  counts: RebuildCounts;
  elapsedMs: number;
  /** Old generation buckets deleted: when this rebuild started, and (unless keepPrevious) the replaced one once it was done. */
  deletedGenerations: number[];
  /** The replaced generation is kept, frozen, for a rollback (keepPrevious). */
  keptPrevious: boolean;
}

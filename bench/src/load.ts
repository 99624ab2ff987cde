// Load for the two-hop and end-to-end benchmarks: one Run per phase records when each
// message was sent and when it arrived at the far end (same process, same clock), and two
// bounded drivers send: as fast as an in-flight window allows, or at a fixed rate.
import { setTimeout as sleep } from 'node:timers/promises';
import { type Figure, percentile } from './stats.js';

/** Send and arrival times (performance.now(), ms) of messages 0..n-1 of one phase. */
export class Run {
  readonly sent: Float64Array;
  /** When the front door answered send i (PubAck, HTTP 2xx): splits a latency into the front door's part and the rest. */
  readonly answered: Float64Array;
  readonly arrived: Float64Array;
  arrivals = 0;
  duplicates = 0;
  sendErrors = 0;
  firstError?: string;
  /** When the last send was answered (PubAck, HTTP 200): with the first send, the rate the front door took them at. */
  lastAnswer = 0;

  constructor(readonly n: number) {
    this.sent = new Float64Array(n).fill(Number.NaN);
    this.answered = new Float64Array(n).fill(Number.NaN);
    this.arrived = new Float64Array(n).fill(Number.NaN);
  }

  /** Message i reached the far end now. Unknown or repeated indexes are counted, not timed. */
  arrive(i: number, at = performance.now()): void {
    if (!(i >= 0 && i < this.n)) return;
    if (!Number.isNaN(this.arrived[i]!)) {
      this.duplicates++;
      return;
    }
    this.arrived[i] = at;
    this.arrivals++;
  }

  failed(err: unknown): void {
    this.sendErrors++;
    this.firstError ??= err instanceof Error ? err.message : String(err);
  }

  /**
   * Waits until every message arrived, or nothing arrived for `idleMs`, or `maxMs` passed:
   * bounded whatever the system under test does.
   */
  async settle(idleMs = 10_000, maxMs = 60_000): Promise<void> {
    const deadline = performance.now() + maxMs;
    let last = this.arrivals;
    let lastChange = performance.now();
    while (this.arrivals < this.n && performance.now() < deadline) {
      await sleep(20);
      if (this.arrivals !== last) {
        last = this.arrivals;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > idleMs) break;
    }
  }

  /**
   * The slowest `share` of the arrivals: how much of their latency was the front door's (send → answer) and how much
   * came after (answer → arrival), and in which seconds of the phase they were sent — a spike shared by every process
   * at one moment looks different from a slow stage.
   */
  slowest(share = 0.01): { count: number; startedAt: Date; frontP50Ms: number; frontMaxMs: number; backP50Ms: number; backMaxMs: number; seconds: [number, number][] } {
    const first = this.firstSent();
    const done = Array.from({ length: this.n }, (_, i) => i).filter((i) => !Number.isNaN(this.arrived[i]!) && !Number.isNaN(this.sent[i]!));
    done.sort((a, b) => this.arrived[b]! - this.sent[b]! - (this.arrived[a]! - this.sent[a]!));
    const slow = done.slice(0, Math.max(1, Math.ceil(done.length * share)));
    const front = slow.map((i) => this.answered[i]! - this.sent[i]!).filter((v) => !Number.isNaN(v));
    const back = slow.map((i) => this.arrived[i]! - Math.max(this.answered[i]!, this.sent[i]!)).filter((v) => !Number.isNaN(v));
    const bySecond = new Map<number, number>();
    for (const i of slow) {
      const sec = Math.floor((this.sent[i]! - first) / 1000);
      bySecond.set(sec, (bySecond.get(sec) ?? 0) + 1);
    }
    return { count: slow.length, startedAt: new Date(performance.timeOrigin + first), frontP50Ms: percentile(front, 50), frontMaxMs: Math.max(...front), backP50Ms: percentile(back, 50), backMaxMs: Math.max(...back),
      seconds: [...bySecond].sort((a, b) => b[1] - a[1]) };
  }

  /** When the phase's first message was sent (a loop: a spread of 100,000s of arguments overflows the stack). */
  private firstSent(): number {
    let first = Number.POSITIVE_INFINITY;
    for (const s of this.sent) if (s < first) first = s;
    return first;
  }

  /** The largest send→arrival latency of the messages sent in each second of the phase (BENCH_E2E_TIMELINE=1). */
  maxPerSecond(): number[] {
    const first = this.firstSent();
    const out: number[] = [];
    for (let i = 0; i < this.n; i++) {
      if (Number.isNaN(this.sent[i]!) || Number.isNaN(this.arrived[i]!)) continue;
      const sec = Math.floor((this.sent[i]! - first) / 1000);
      out[sec] = Math.max(out[sec] ?? 0, this.arrived[i]! - this.sent[i]!);
    }
    return Array.from(out, (v) => v ?? 0);
  }

  /** Arrived per second from the first send to the last arrival, and send→arrival percentiles. */
  figure(what = ''): Figure & { arrived: number; sent: number; p95Ms: number; acceptedRate: number } {
    const lat: number[] = [];
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    let sent = 0;
    for (let i = 0; i < this.n; i++) {
      const s = this.sent[i]!;
      const a = this.arrived[i]!;
      if (!Number.isNaN(s)) {
        sent++;
        if (s < first) first = s;
      }
      if (!Number.isNaN(a) && !Number.isNaN(s)) {
        lat.push(a - s);
        if (a > last) last = a;
      }
    }
    const sec = (last - first) / 1000;
    const acceptedSec = (this.lastAnswer - first) / 1000;
    return { what, rate: sec > 0 ? lat.length / sec : Number.NaN, acceptedRate: acceptedSec > 0 ? (sent - this.sendErrors) / acceptedSec : Number.NaN, p50Ms: percentile(lat, 50), p95Ms: percentile(lat, 95), p99Ms: percentile(lat, 99), arrived: this.arrivals, sent };
  }
}

/** Sends message 0..n-1 with at most `window` sends unanswered; `sent[i]` is when send(i) began. */
export async function driveMax(run: Run, window: number, send: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < run.n) {
      const i = next++;
      run.sent[i] = performance.now();
      await send(i).catch((err) => run.failed(err));
      run.lastAnswer = run.answered[i] = performance.now();
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, run.n) }, worker));
}

/**
 * Open loop at `ratePerSec`: message i is due at start + i/rate and `sent[i]` is that due
 * time, so a sender that falls behind shows as latency rather than hiding it (no coordinated
 * omission). At most `maxInFlight` sends are unanswered; beyond that the driver waits and
 * counts it as `stalls` (the system did not keep up).
 */
export async function driveSteady(run: Run, ratePerSec: number, maxInFlight: number, send: (i: number) => Promise<void>): Promise<{ stalls: number; lagMaxMs: number }> {
  const interval = 1000 / ratePerSec;
  const start = performance.now() + 5;
  let inFlight = 0;
  let stalls = 0;
  let lagMaxMs = 0;
  let freed: (() => void) | undefined;
  const pending = new Set<Promise<void>>();
  for (let i = 0; i < run.n; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(Math.floor(wait));
    while (inFlight >= maxInFlight) {
      stalls++;
      await new Promise<void>((r) => (freed = r));
    }
    const now = performance.now();
    lagMaxMs = Math.max(lagMaxMs, now - due);
    run.sent[i] = Math.min(due, now); // late: from when it was due; (under 1 ms) early: from when it went
    inFlight++;
    const p: Promise<void> = send(i)
      .catch((err) => run.failed(err))
      .finally(() => {
        run.lastAnswer = run.answered[i] = performance.now();
        inFlight--;
        pending.delete(p);
        const f = freed;
        freed = undefined;
        f?.();
      });
    pending.add(p);
  }
  await Promise.all(pending);
  return { stalls, lagMaxMs };
}

import type { NatsServerProcess } from '@bus/nats-server';

/** Lines of server output kept across restarts, per server. */
const KEEP_LINES = 200;

/**
 * Internal: one server's output across its restarts. Each new process starts with an
 * empty log, but the lines before a restart (why it stopped, what it recovered) are the
 * ones a failing fault test needs, so they are carried over, marked.
 */
export class ServerLog {
  private earlier: string[] = [];
  private current: NatsServerProcess | undefined;

  /** `next` is the running process from now on; `why` marks the seam in the log. */
  replace(next: NatsServerProcess, why: string): void {
    if (this.current) {
      this.earlier.push(...this.current.logTail(KEEP_LINES).split('\n'), `----- testkit: ${why} -----`);
      this.earlier = this.earlier.slice(-KEEP_LINES);
    }
    this.current = next;
  }

  /** The last `lines` lines (default 50), oldest first. */
  tail(lines = 50): string {
    const now = this.current ? this.current.logTail(KEEP_LINES).split('\n') : [];
    return [...this.earlier, ...now].filter((l) => l !== '').slice(-lines).join('\n');
  }
}

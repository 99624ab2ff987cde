/** One named condition of readiness, e.g. `nats` or `topology`. */
export interface Check {
  name: string;
  ok: boolean;
  /** Why it is not ready, and what to do; shown by /readyz. */
  reason?: string;
}

/**
 * Readiness as pushed state: components say when they become (un)ready, so /readyz is
 * instant and never itself waits on NATS.
 */
export class Readiness {
  private readonly checks = new Map<string, Check>();

  /** Declares a check that starts not ready. */
  require(name: string, reason = 'starting'): void {
    if (!this.checks.has(name)) this.checks.set(name, { name, ok: false, reason });
  }

  set(name: string, ok: boolean, reason?: string): void {
    this.checks.set(name, ok ? { name, ok } : { name, ok, reason: reason ?? 'not ready' });
  }

  get ready(): boolean {
    for (const c of this.checks.values()) if (!c.ok) return false;
    return true;
  }

  report(): { ready: boolean; checks: Check[] } {
    return { ready: this.ready, checks: [...this.checks.values()] };
  }
}

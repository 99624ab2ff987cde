/**
 * The four failure classes (docs/architecture.md → Failure classes). Every error in the bus carries one, and the
 * class alone decides what happens next: retry, dead-letter, pause, or look up.
 */
export const FailureClasses = ['transient', 'business', 'permanent', 'ambiguous'] as const;
export type FailureClass = (typeof FailureClasses)[number];

/**
 * The base of every error the bus raises. `code` is stable (listed in docs/errors.md);
 * the message says what happened, to what, and what the operator does next.
 */
export class BusError extends Error {
  constructor(
    readonly code: string,
    readonly failureClass: FailureClass,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`[${code}] ${message}`, options);
    this.name = new.target.name;
  }

  /** True when trying the same thing again later can succeed. */
  get retryable(): boolean {
    return this.failureClass === 'transient' || this.failureClass === 'ambiguous';
  }
}

/** Raised when configuration is invalid; the process must not start. */
export class ConfigError extends BusError {
  constructor(message: string, options?: ErrorOptions) {
    super('CONFIG_INVALID', 'permanent', message, options);
  }
}

/**
 * The failure class of anything thrown. A BusError says its own class; anything else is
 * an unexpected bug in code we run, which retrying will not fix: permanent. NATS client
 * errors are not bugs: `classifyNatsError` (@bus/bus, the lib that knows the client's
 * error classes) turns them into BusErrors first — consume does so for every handler.
 */
export function failureClassOf(err: unknown): FailureClass {
  return err instanceof BusError ? err.failureClass : 'permanent';
}

/** A short, log-safe description of anything thrown. */
export function describeError(err: unknown): { code: string; failureClass: FailureClass; message: string } {
  if (err instanceof BusError) return { code: err.code, failureClass: err.failureClass, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'UNEXPECTED', failureClass: 'permanent', message };
}

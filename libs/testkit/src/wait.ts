/** Options for {@link waitFor}. */
export interface WaitOptions {
  /** Required. What is awaited, as it should read in "timed out … waiting for <what>". */
  what: string;
  /** Give up after this many milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** Pause between two checks, in milliseconds. Default 20. */
  intervalMs?: number;
}

type Attempt<T> = { value: T } | { error: unknown } | undefined;

/** Internal: the attempt's outcome, or undefined when `ms` pass first (the timer never outlives it). */
export async function within<T>(attempt: Promise<T>, ms: number): Promise<Attempt<T>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([attempt.then((value) => ({ value }), (error: unknown) => ({ error })), late]);
  } finally {
    clearTimeout(timer);
  }
}

const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Polls `condition` until it returns a truthy value and resolves with that value. Errors
 * thrown by the condition count as "not yet" and are retried; the last one is named on
 * timeout. A check that hangs cannot outlast `timeoutMs`. Tests wait on conditions like
 * this, never on fixed sleeps.
 *
 * @throws Error `timed out after <timeoutMs>ms waiting for <what>[; last error: …]`
 */
export async function waitFor<T>(condition: () => T | Promise<T>, opts: WaitOptions): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let hung = false;
  for (;;) {
    const outcome = await within(Promise.resolve().then(condition), Math.max(1, deadline - Date.now()));
    if (outcome === undefined) hung = true;
    else if ('error' in outcome) lastError = outcome.error;
    else if (outcome.value) return outcome.value as NonNullable<T>;
    const left = deadline - Date.now();
    if (hung || left <= 0) {
      const last = lastError === undefined ? '' : `; last error: ${describe(lastError)}`;
      const still = hung ? '; the last check was still running' : '';
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${opts.what}${last}${still}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
  }
}

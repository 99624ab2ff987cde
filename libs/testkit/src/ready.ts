import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { waitFor } from './wait.js';

/** Credentials the kit uses for its own readiness checks when a server requires auth. */
export interface ClientAuth {
  /** With `pass`: matches nats-server `--user`. */
  user?: string;
  /** With `user`: matches nats-server `--pass`. */
  pass?: string;
  /** Matches nats-server `--auth`. */
  token?: string;
}

/** Options for {@link waitForJetStream}. */
export interface ReadyOptions {
  /** Give up after this many milliseconds. Default 15 000. */
  timeoutMs?: number;
  /** Credentials, when the server requires them. Default none. */
  auth?: ClientAuth;
  /** Server output appended to the timeout error. Default none. */
  log?: () => string;
}

/** Internal: resolves once a client connects and, if `jetstream`, JetStream answers. */
export async function waitReady(url: string, opts: ReadyOptions & { jetstream: boolean }): Promise<void> {
  const servers = url.split(',').map((s) => s.trim());
  const what = opts.jetstream ? `JetStream at ${url}` : `a client connection to ${url}`;
  try {
    await waitFor(async () => {
      const nc = await connect({ servers, timeout: 1_000, reconnect: false, ...opts.auth });
      try {
        if (opts.jetstream) await (await jetstreamManager(nc, { timeout: 2_000 })).getAccountInfo();
        return true;
      } finally {
        await nc.close();
      }
    }, { what, timeoutMs: opts.timeoutMs ?? 15_000, intervalMs: 50 });
  } catch (err) {
    const log = opts.log?.();
    throw new Error(`${(err as Error).message}${log ? `\nserver log (tail):\n${log}` : ''}`, { cause: err });
  }
}

/**
 * Resolves once a client can connect to `url` (one URL or a comma-separated list) and
 * JetStream answers an account-info request; rejects after `timeoutMs` naming the last
 * error and, if given, the server log.
 */
export function waitForJetStream(url: string, opts: ReadyOptions = {}): Promise<void> {
  return waitReady(url, { ...opts, jetstream: true });
}

import type { Logger } from '@bus/observability';

/**
 * Runs `stop` once on SIGTERM or SIGINT (drain consumers, close servers, close NATS),
 * then exits 0. A second signal, or `stop` taking longer than `timeoutMs`, exits 1.
 * A process started by a launcher over IPC (`bus up`) also stops when the launcher is gone,
 * even if it was killed without a chance to stop its children.
 */
export function onShutdown(log: Logger, stop: () => Promise<void>, timeoutMs = 30_000): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals | 'disconnect') => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping: draining work in flight');
    const timer = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown took too long; exiting with work unfinished (it will be redelivered)');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop().then(
      () => {
        log.info('stopped cleanly');
        process.exit(0);
      },
      (err) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  if (process.send) process.once('disconnect', () => handler('disconnect'));
}

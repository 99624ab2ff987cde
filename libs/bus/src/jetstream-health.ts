import type { Logger, Readiness } from '@bus/observability';
import type { JetStreamManager } from '@nats-io/jetstream';

/**
 * Keeps a `jetstream` readiness check current: being connected to NATS is not enough to
 * store (JetStream may have no quorum or no stream). Asks for the stream's info every
 * `intervalMs` (default 2 000). Returns a function that stops the watch.
 */
export function watchJetStream(jsm: JetStreamManager, stream: string, readiness: Readiness, log: Logger, intervalMs = 2_000): () => void {
  readiness.require('jetstream', `checking that JetStream serves ${stream}`);
  let last: boolean | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const check = async () => {
    let ok = false;
    let reason = '';
    try {
      await jsm.streams.info(stream);
      ok = true;
    } catch (err) {
      reason = `JetStream cannot serve ${stream}: ${(err as Error).message}. Check the NATS server and 'bus streams status'.`;
    }
    readiness.set('jetstream', ok, reason);
    if (ok !== last) (ok ? log.info.bind(log) : log.warn.bind(log))({ stream }, ok ? 'JetStream available' : reason);
    last = ok;
    if (!stopped) timer = setTimeout(check, intervalMs);
  };
  void check();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

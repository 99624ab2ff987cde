import type { NatsConnection } from '@nats-io/nats-core';

/**
 * A count per stream that moves whenever the stream may have lost removals of acknowledged work-queue messages
 * (leftovers.ts): this connection reconnected (the server it talks to may have been killed and restarted) or, on
 * replicated streams, the stream's leader changed (its old leader may have died with removals it had not passed on).
 * consume() looks for leftovers when it moves, not on a timer: the look reads the consumer's subject from the
 * stream's start, and nats-server 2.9 loads every block before the first match — with another connector's backlog in
 * front of it (a paused connector on DELIVERIES) that was the whole backlog, ~1 GB read and a 0.4–1.7 s stall of
 * the server each time (the soak's p99 spikes).
 */
export function watchStoreEpochs(nc: NatsConnection, replicated: boolean): (stream: string) => number {
  let reconnects = 0;
  const leaderChanges = new Map<string, number>();
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') reconnects++;
  })().catch(() => undefined);
  // advisories only where a leader can change: a single server has none (and an account without $JS.EVENT rights
  // would see a permission error for nothing)
  if (replicated) {
    const prefix = '$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.';
    nc.subscribe(`${prefix}*`, {
      callback: (_err, m) => {
        const stream = m?.subject.slice(prefix.length);
        if (stream) leaderChanges.set(stream, (leaderChanges.get(stream) ?? 0) + 1);
      },
    });
  }
  return (stream) => reconnects + (leaderChanges.get(stream) ?? 0);
}

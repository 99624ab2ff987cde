import type { NatsConnection } from '@nats-io/nats-core';

/**
 * A count per stream that moves whenever the stream may have lost removals of acknowledged work-queue messages
 * (leftovers.ts): this connection reconnected (the server it talks to may have been killed and restarted) or, on
 * replicated streams, the stream's leader changed (its old leader may have died with removals it had not passed on).
 * consume() then looks for leftovers from the stream's start again; between moves it reads only past what an earlier
 * look found clear — a look from the start makes nats-server 2.9 load every block before the consumer's first message
 * (with another connector's backlog in front of it, a paused connector on DELIVERIES: a 0.4–1.7 s stall each time).
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

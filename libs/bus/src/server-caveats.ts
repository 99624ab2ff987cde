/**
 * What the connected nats-server cannot guarantee that the bus relies on. Today one: in a cluster (streams
 * replicated, BUS_REPLICAS > 1), servers before 2.9.21 checked a compare-and-set write's expected revision
 * (Nats-Expected-Last-Subject-Sequence) before proposing it, not in the replicated log, so two writes with the same
 * revision a few ms apart could both succeed (nats-io/nats-server#4320). The ordering guard's lease is such a write:
 * two attempts of one entity could both take it. Measured on 2.9.10 (`BENCH_ONLY=cas`): both of two such writes sent
 * through two nodes at once succeeded in 1,424 of 2,000 rounds; `npm run chaos`'s cluster-node scenario showed a version
 * applied twice and another out of order (one run in 21). A single server (R1) is not affected.
 */
export function serverCaveats(version: string | undefined, replicas: number): string[] {
  if (replicas <= 1 || version === undefined) return [];
  return !serverAtLeast(version, 2, 9, 21)
    ? [`nats-server ${version} does not serialize concurrent compare-and-set writes in a cluster (fixed in 2.9.21, nats-io/nats-server#4320): ` +
      'with BUS_REPLICAS > 1 two deliveries of one entity can both take its ordering lease (a version applied twice or out of order). ' +
      'Upgrade every server of the cluster to 2.9.21 or newer (2.10+ recommended), or run R1.']
    : [];
}

/** Whether nats-server `version` ("2.9.10", "2.10.0-beta") is at least major.minor.patch. */
export function serverAtLeast(version: string, major: number, minor: number, patch = 0): boolean {
  const [a = 0, b = 0, c = 0] = version.split(/[.-]/).map((p) => Number.parseInt(p, 10) || 0);
  return a !== major ? a > major : b !== minor ? b > minor : c >= patch;
}

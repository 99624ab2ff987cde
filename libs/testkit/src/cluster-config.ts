import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePorts } from './ports.js';

/** Internal: one cluster node's fixed identity; ports and store stay the same across restarts. */
export interface NodeSpec {
  name: string;
  port: number;
  clusterPort: number;
  monitorPort: number;
  storeDir: string;
  configFile: string;
}

/**
 * Internal: picks 3 ports per node (client, route, monitoring; all bound at once, so
 * distinct) and writes each node's config file under `baseDir`. Routes must name fixed
 * ports, which is why a cluster cannot use `-p -1` and the ports file.
 */
export async function writeClusterConfig(baseDir: string, size: number, clusterName: string): Promise<NodeSpec[]> {
  const ports = await freePorts(size * 3);
  const nodes = Array.from({ length: size }, (_, i): NodeSpec => ({
    name: `n${i}`,
    port: ports[i * 3]!,
    clusterPort: ports[i * 3 + 1]!,
    monitorPort: ports[i * 3 + 2]!,
    storeDir: join(baseDir, `n${i}`),
    configFile: join(baseDir, `n${i}.conf`),
  }));
  for (const n of nodes) {
    const routes = nodes.filter((o) => o !== n).map((o) => `nats-route://127.0.0.1:${o.clusterPort}`);
    await writeFile(n.configFile, [
      `server_name: ${n.name}`,
      `listen: 127.0.0.1:${n.port}`,
      `http: 127.0.0.1:${n.monitorPort}`,
      // The store comes from the spawner's -sd flag: 2.9 rejects store_dir given both ways.
      `# store: nats-server -c ${n.configFile} -sd ${n.storeDir}`,
      'jetstream: enabled',
      'cluster {',
      `  name: ${clusterName}`,
      `  listen: 127.0.0.1:${n.clusterPort}`,
      `  routes: [${routes.join(', ')}]`,
      '}',
      '',
    ].join('\n'));
  }
  return nodes;
}

interface Jsz {
  server_name?: string;
  meta_cluster?: { leader?: string; replicas?: { name: string; current?: boolean; offline?: boolean }[] };
}

/** Internal: GET /jsz of one node's monitoring port (1 s timeout). */
export async function jsz(n: NodeSpec): Promise<Jsz> {
  const res = await fetch(`http://127.0.0.1:${n.monitorPort}/jsz`, { signal: AbortSignal.timeout(1_000) });
  if (!res.ok) throw new Error(`${n.name} /jsz answered ${res.status}`);
  return (await res.json()) as Jsz;
}

/**
 * Internal: the meta leader's name when every node in `running` names the same leader, it
 * is one of them, and it sees every other running node as current and online (a restarted
 * node has rejoined). Throws saying what is missing otherwise, for waitFor's last error.
 */
export async function agreedMetaLeader(running: NodeSpec[]): Promise<string> {
  const views = await Promise.all(running.map(async (n) => ({ n, z: await jsz(n) })));
  const leaders = new Set(views.map((v) => v.z.meta_cluster?.leader ?? ''));
  const leader = [...leaders][0];
  if (leaders.size !== 1 || !leader) {
    throw new Error(`nodes disagree on the meta leader: ${views.map((v) => `${v.n.name}→${v.z.meta_cluster?.leader || 'none'}`).join(', ')}`);
  }
  const lead = views.find((v) => v.n.name === leader);
  if (!lead) throw new Error(`meta leader ${leader} is not a running node`);
  for (const { n } of views) {
    if (n.name === leader) continue;
    const r = lead.z.meta_cluster?.replicas?.find((x) => x.name === n.name);
    if (!r?.current || r.offline) throw new Error(`meta leader ${leader} does not yet see ${n.name} as current`);
  }
  return leader;
}

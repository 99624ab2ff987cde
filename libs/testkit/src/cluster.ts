import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NatsServerProcess, spawnNatsServer } from '@bus/nats-server';
import { waitForJetStream } from './nats.js';
import { freePort, uniquePrefix } from './prefix.js';
import { waitFor } from './wait.js';

interface Node {
  name: string;
  port: number;
  clusterPort: number;
  monitorPort: number;
  storeDir: string;
  configFile: string;
  proc?: NatsServerProcess;
}

/** A JetStream cluster on loopback, for R3 streams and node-failure tests. */
export interface TestCluster {
  urls: string[];
  /** Comma-joined, for clients and NATS_URL. */
  url: string;
  prefix: string;
  nodes: { url: string; storeDir: string; running: boolean }[];
  stopNode(i: number): Promise<void>;
  /** Same ports and store; resolves once the node is back and a meta leader is agreed. */
  startNode(i: number): Promise<void>;
  waitForMetaLeader(timeoutMs?: number): Promise<string>;
  stop(opts?: { removeStore?: boolean }): Promise<void>;
  logTail(i: number, lines?: number): string;
}

async function metaLeaderOf(n: Node): Promise<string | undefined> {
  const r = await fetch(`http://127.0.0.1:${n.monitorPort}/jsz`);
  const j = (await r.json()) as { meta_cluster?: { leader?: string } };
  return j.meta_cluster?.leader;
}

/**
 * `size` nats-servers with JetStream, routed to each other. Ready when every running node
 * names the same meta leader and JetStream answers through the cluster.
 */
export async function startCluster(size = 3): Promise<TestCluster> {
  if (process.env.NATS_URL) throw new Error('startCluster spawns its own servers; it cannot use NATS_URL (unset it for cluster tests)');
  const base = await mkdtemp(join(tmpdir(), 'testcluster-'));
  const nodes: Node[] = [];
  for (let i = 0; i < size; i++) {
    nodes.push({ name: `n${i}`, port: await freePort(), clusterPort: await freePort(), monitorPort: await freePort(),
      storeDir: join(base, `n${i}`), configFile: join(base, `n${i}.conf`) });
  }
  for (const n of nodes) {
    const routes = nodes.map((o) => `nats-route://127.0.0.1:${o.clusterPort}`).join(', ');
    await writeFile(n.configFile, [
      `server_name: ${n.name}`,
      `http_port: ${n.monitorPort}`,
      'cluster {',
      '  name: testcluster',
      `  listen: 127.0.0.1:${n.clusterPort}`,
      `  routes: [${routes}]`,
      '}',
    ].join('\n'));
  }
  const start = async (n: Node) => {
    n.proc = await spawnNatsServer({ port: n.port, storeDir: n.storeDir, configFile: n.configFile, name: n.name });
  };
  await Promise.all(nodes.map(start));
  const urls = nodes.map((n) => `nats://127.0.0.1:${n.port}`);
  const running = () => nodes.filter((n) => n.proc?.running);

  const waitForMetaLeader = async (timeoutMs = 30_000) =>
    waitFor(async () => {
      const leaders = await Promise.all(running().map(metaLeaderOf));
      const first = leaders[0];
      return first && leaders.every((l) => l === first) ? first : undefined;
    }, { what: 'every node to agree on a JetStream meta leader', timeoutMs, intervalMs: 100 });

  await waitForMetaLeader();
  await waitForJetStream(urls.join(','), 30_000);

  return {
    urls, url: urls.join(','), prefix: uniquePrefix(),
    get nodes() {
      return nodes.map((n, i) => ({ url: urls[i]!, storeDir: n.storeDir, running: !!n.proc?.running }));
    },
    async stopNode(i) {
      await nodes[i]?.proc?.stop();
    },
    async startNode(i) {
      const n = nodes[i]!;
      if (n.proc?.running) return;
      await start(n);
      await waitForMetaLeader();
    },
    waitForMetaLeader,
    async stop(o = {}) {
      await Promise.all(nodes.map((n) => n.proc?.stop()));
      if (o.removeStore) await rm(base, { recursive: true, force: true });
    },
    logTail: (i, lines) => nodes[i]?.proc?.logTail(lines) ?? '',
  };
}

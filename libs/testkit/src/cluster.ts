import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNatsServer, type NatsServerProcess, spawnNatsServer } from '@bus/nats-server';
import { killAtExit, removeAtExit } from './cleanup.js';
import { agreedMetaLeader, type NodeSpec, writeClusterConfig } from './cluster-config.js';
import { uniquePrefix } from './prefix.js';
import { waitForJetStream } from './ready.js';
import { ServerLog } from './server-log.js';
import { waitFor } from './wait.js';

/** One node of a {@link TestCluster}, as of the moment `nodes` was read. */
export interface ClusterNode {
  /** server_name, `n0`…`n<size-1>`. */
  name: string;
  /** Client URL, `nats://127.0.0.1:<port>`; the same after a restart. */
  url: string;
  /** `http://127.0.0.1:<port>`, for /jsz, /routez, /healthz. */
  monitorUrl: string;
  /** This node's JetStream store; it survives stopNode()/startNode(). */
  storeDir: string;
  /** False between stopNode(i) and startNode(i). */
  running: boolean;
}

/** A JetStream cluster on loopback, for R3 streams and node-failure tests. */
export interface TestCluster {
  /** One client URL per node. */
  urls: string[];
  /** `urls` comma-joined, for NATS_URL and other settings that take a server list. */
  url: string;
  /** Unique per startCluster() call (see uniquePrefix). */
  prefix: string;
  /** A fresh snapshot on every read. */
  readonly nodes: ClusterNode[];
  /** SIGTERM node `i` (SIGKILL after 10 s) and wait for its exit. */
  stopNode(i: number): Promise<void>;
  /** SIGKILL node `i` (a crash: no shutdown, no leadership handed over) and wait for its exit; startNode(i) brings it back. */
  killNode(i: number): Promise<void>;
  /** Starts node `i` on its ports and store; resolves once it has rejoined and a meta leader is agreed. */
  startNode(i: number): Promise<void>;
  /** Resolves with the leader's name once every running node agrees on it. Default timeout 30 000 ms. */
  waitForMetaLeader(timeoutMs?: number): Promise<string>;
  /** Stops every node; with `removeStore` (default false) deletes their stores and configs. */
  stop(opts?: { removeStore?: boolean }): Promise<void>;
  /** The last `lines` (default 50) lines of node `i`'s output, across restarts. */
  logTail(i: number, lines?: number): string;
}

interface Node extends NodeSpec {
  proc?: NatsServerProcess;
  log: ServerLog;
  untrack: () => void;
}

/** Attempts when another process takes a port between choosing it and binding it. */
const PORT_ATTEMPTS = 3;

async function launch(bin: string, n: Node, why: string): Promise<void> {
  const proc = await spawnNatsServer({ bin, port: n.port, storeDir: n.storeDir, configFile: n.configFile, name: n.name });
  n.untrack = killAtExit(() => void proc.kill());
  n.log.replace(proc, why);
  n.proc = proc;
}

async function launchAll(bin: string, base: string, size: number, name: string): Promise<Node[]> {
  for (let attempt = 1; ; attempt++) {
    const nodes: Node[] = (await writeClusterConfig(base, size, name)).map((s) => ({ ...s, log: new ServerLog(), untrack: () => undefined }));
    const results = await Promise.allSettled(nodes.map((n) => launch(bin, n, 'started')));
    const failed = results.find((r) => r.status === 'rejected');
    if (!failed) return nodes;
    await Promise.all(nodes.map((n) => n.proc?.kill()));
    await Promise.all(nodes.map((n) => rm(n.storeDir, { recursive: true, force: true })));
    const err = failed.reason as Error;
    if (attempt >= PORT_ATTEMPTS || !/address already in use/.test(err.message)) throw err;
  }
}

/**
 * `size` (default 3) JetStream nodes on 127.0.0.1, routed to each other, each with its own
 * server_name, store and generated config file under one temp dir. Ready when every node's
 * /jsz names the same meta leader and JetStream answers through the cluster. Not available
 * with NATS_URL: it throws saying so.
 */
export async function startCluster(size = 3): Promise<TestCluster> {
  if (process.env.NATS_URL) {
    throw new Error(`startCluster spawns its own nats-servers and cannot use NATS_URL=${process.env.NATS_URL}: ` +
      'skip cluster tests when NATS_URL is set, or unset it');
  }
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`startCluster(size): size must be a whole number ≥ 1, got ${size}`);
  const bin = findNatsServer();
  if (!bin) throw new Error('startCluster needs nats-server: install it (apt-get install -y nats-server) or set NATS_SERVER_BIN');
  const prefix = uniquePrefix();
  const base = await mkdtemp(join(tmpdir(), 'testcluster-'));
  const keepUntilExit = removeAtExit(base);
  const nodes = await launchAll(bin, base, size, prefix).catch(async (err) => {
    await rm(base, { recursive: true, force: true });
    throw err;
  });
  const urls = nodes.map((n) => `nats://127.0.0.1:${n.port}`);
  const node = (i: number) => {
    const n = nodes[i];
    if (!n) throw new RangeError(`no node ${i}: this cluster has nodes 0…${size - 1}`);
    return n;
  };
  const logs = () => nodes.map((n) => `--- ${n.name} ---\n${n.log.tail(20)}`).join('\n');
  const waitForMetaLeader = async (timeoutMs = 30_000) => {
    try {
      return await waitFor(() => agreedMetaLeader(nodes.filter((n) => n.proc?.running)),
        { what: 'every running node to agree on one JetStream meta leader', timeoutMs, intervalMs: 100 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\nnode logs (tail):\n${logs()}`, { cause: err });
    }
  };
  const stop = async (o: { removeStore?: boolean } = {}) => {
    await Promise.all(nodes.map(async (n) => {
      await n.proc?.stop();
      n.untrack();
    }));
    if (o.removeStore) {
      await rm(base, { recursive: true, force: true });
      keepUntilExit();
    }
  };

  try {
    await waitForMetaLeader();
    await waitForJetStream(urls.join(','), { timeoutMs: 30_000, log: logs });
  } catch (err) {
    await stop({ removeStore: true });
    throw err;
  }

  return {
    urls, url: urls.join(','), prefix,
    get nodes() {
      return nodes.map((n, i) => ({ name: n.name, url: urls[i]!, monitorUrl: `http://127.0.0.1:${n.monitorPort}`,
        storeDir: n.storeDir, running: !!n.proc?.running }));
    },
    async stopNode(i) {
      const n = node(i);
      await n.proc?.stop();
      n.untrack();
    },
    async killNode(i) {
      const n = node(i);
      await n.proc?.kill();
      n.untrack();
    },
    async startNode(i) {
      const n = node(i);
      if (n.proc?.running) return;
      await launch(bin, n, 'stopped; started again on the same ports and store');
      await waitForMetaLeader();
    },
    waitForMetaLeader,
    stop,
    logTail: (i, lines) => node(i).log.tail(lines),
  };
}

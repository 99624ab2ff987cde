import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startCluster, waitFor } from './index.js';

const skip = process.env.NATS_URL ? 'NATS_URL is set: startCluster spawns its own servers (unset NATS_URL)' : false;

describe('startCluster(3)', { skip }, () => {
  it('an R3 stream keeps accepting and serving publishes with one node stopped; the node rejoins and catches up', async () => {
    const cluster = await startCluster(3);
    const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      assert.equal(cluster.url, cluster.urls.join(','));
      assert.equal(new Set(cluster.nodes.map((n) => n.storeDir)).size, 3);
      const leader = await cluster.waitForMetaLeader();
      assert.ok(cluster.nodes.some((n) => n.name === leader));

      const jsm = await jetstreamManager(nc);
      const js = jetstream(nc);
      const stream = `${cluster.prefix}_R3`;
      await jsm.streams.add({ name: stream, subjects: [`${cluster.prefix}.r3.>`], num_replicas: 3 });
      assert.equal((await js.publish(`${cluster.prefix}.r3.a`, 'one')).seq, 1);

      // Stop a node this client is not connected to, so the test is about the stream, not reconnects.
      const connectedPort = nc.getServer().split(':').pop();
      const victim = cluster.nodes.findIndex((n) => new URL(n.url).port !== connectedPort);
      await cluster.stopNode(victim);
      assert.equal(cluster.nodes[victim]?.running, false);

      const ack = await waitFor(() => js.publish(`${cluster.prefix}.r3.b`, 'two', { timeout: 2_000 }),
        { what: 'an R3 publish with one node down', timeoutMs: 20_000 });
      assert.equal(ack.seq, 2);
      const m = await waitFor(() => jsm.streams.getMessage(stream, { seq: 2 }), { what: 'reading it back', timeoutMs: 10_000 });
      assert.equal(m.string(), 'two');

      await cluster.startNode(victim);
      assert.equal(cluster.nodes.filter((n) => n.running).length, 3);
      assert.match(cluster.logTail(victim, 200), /started again on the same ports and store/);
      assert.ok(await cluster.waitForMetaLeader());
      const name = cluster.nodes[victim]!.name;
      await waitFor(async () => {
        const info = await jsm.streams.info(stream);
        if (info.state.messages !== 2) return false;
        if (info.cluster?.leader === name) return true;
        const replica = info.cluster?.replicas?.find((r) => r.name === name);
        return !!replica?.current && !replica.offline;
      }, { what: `${name} to be a current replica of ${stream} again`, timeoutMs: 20_000, intervalMs: 100 });
    } finally {
      await nc.close();
      await cluster.stop({ removeStore: true });
    }
  });
});

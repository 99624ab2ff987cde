import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startCluster, startNats, startProcess, uniquePrefix, waitFor } from './index.js';

const spawnable = !process.env.NATS_URL;

describe('startNats', () => {
  it('gives each suite its own server and prefix', async (t) => {
    if (!spawnable) return t.skip('NATS_URL is set: servers are not spawned');
    const [a, b] = await Promise.all([startNats(), startNats()]);
    try {
      assert.notEqual(a.url, b.url);
      assert.notEqual(a.prefix, b.prefix);
      assert.match(a.prefix, /^t[0-9a-z]{8}$/);
    } finally {
      await Promise.all([a.stop({ removeStore: true }), b.stop({ removeStore: true })]);
    }
  });

  it('restart() keeps the stream and its messages on the same URL', async (t) => {
    if (!spawnable) return t.skip('NATS_URL is set: the server cannot be restarted');
    const nats = await startNats();
    try {
      let nc = await connect({ servers: nats.url });
      await (await jetstreamManager(nc)).streams.add({ name: 'KEEP', subjects: ['keep.>'] });
      await jetstream(nc).publish('keep.a', 'survives');
      await nc.close();
      await nats.restart();
      nc = await connect({ servers: nats.url });
      const m = await (await jetstreamManager(nc)).streams.getMessage('KEEP', { seq: 1 });
      assert.equal(m?.string(), 'survives');
      await nc.close();
    } finally {
      await nats.stop({ removeStore: true });
    }
  });

  it('stop() refuses connections until start() brings it back', async (t) => {
    if (!spawnable) return t.skip('NATS_URL is set: the server cannot be stopped');
    const nats = await startNats();
    try {
      await nats.stop();
      await assert.rejects(connect({ servers: nats.url, reconnect: false, timeout: 500 }));
      await nats.start();
      await (await connect({ servers: nats.url })).close();
    } finally {
      await nats.stop({ removeStore: true });
    }
  });
});

describe('startCluster', () => {
  it('an R3 stream keeps accepting and serving publishes with one node stopped, and the node rejoins', async (t) => {
    if (!spawnable) return t.skip('NATS_URL is set: a cluster cannot be spawned');
    const cluster = await startCluster(3);
    const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      const jsm = await jetstreamManager(nc);
      const js = jetstream(nc);
      await jsm.streams.add({ name: 'R3', subjects: ['r3.>'], num_replicas: 3 });
      await js.publish('r3.a', 'one');
      const victim = cluster.urls.findIndex((u) => !u.endsWith(`:${nc.getServer().split(':').pop()}`));
      await cluster.stopNode(victim);
      assert.equal(cluster.nodes[victim]?.running, false);
      const ack = await waitFor(() => js.publish('r3.b', 'two', { timeout: 2_000 }), { what: 'an R3 publish with a node down', timeoutMs: 20_000 });
      assert.equal(ack.seq, 2);
      const m = await waitFor(() => jsm.streams.getMessage('R3', { seq: 2 }), { what: 'reading it back', timeoutMs: 10_000 });
      assert.equal(m?.string(), 'two');
      await cluster.startNode(victim);
      await cluster.waitForMetaLeader();
      assert.equal(cluster.nodes.filter((n) => n.running).length, 3);
    } finally {
      await nc.close();
      await cluster.stop({ removeStore: true });
    }
  });
});

describe('waitFor and startProcess', () => {
  it('waitFor times out naming what it waited for and the last error', async () => {
    await assert.rejects(
      waitFor(() => {
        throw new Error('still down');
      }, { what: 'the moon', timeoutMs: 100 }),
      /timed out after 100ms waiting for the moon; last error: still down/,
    );
  });

  it('startProcess captures output and reports a SIGKILL', async () => {
    const p = startProcess({ command: process.execPath, args: ['-e', 'console.log("ready " + process.pid); setInterval(() => {}, 1000)'] });
    await p.waitForOutput(/ready \d+/, 'the child to start');
    p.kill('SIGKILL');
    assert.deepEqual(await p.exited, { code: null, signal: 'SIGKILL' });
  });

  it('uniquePrefix is unique', () => {
    assert.equal(new Set(Array.from({ length: 1000 }, uniquePrefix)).size, 1000);
  });
});

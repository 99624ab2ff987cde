import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { freePort, startCluster, startNats, type TestNats } from './index.js';

const skip = process.env.NATS_URL ? 'NATS_URL is set: these tests need a nats-server the kit spawns (unset NATS_URL)' : false;

/** Creates `<prefix>_KEEP` on `<prefix>.keep.>` and stores one message; returns its sequence. */
async function storeOne(nats: TestNats, data: string): Promise<number> {
  const nc = await connect({ servers: nats.url });
  try {
    await (await jetstreamManager(nc)).streams.add({ name: `${nats.prefix}_KEEP`, subjects: [`${nats.prefix}.keep.>`] });
    return (await jetstream(nc).publish(`${nats.prefix}.keep.a`, data)).seq;
  } finally {
    await nc.close();
  }
}

async function readOne(nats: TestNats, seq: number): Promise<string | undefined> {
  const nc = await connect({ servers: nats.url });
  try {
    return (await (await jetstreamManager(nc)).streams.getMessage(`${nats.prefix}_KEEP`, { seq }))?.string();
  } finally {
    await nc.close();
  }
}

async function dropStream(nats: TestNats): Promise<void> {
  const nc = await connect({ servers: nats.url });
  try {
    await (await jetstreamManager(nc)).streams.delete(`${nats.prefix}_KEEP`);
  } finally {
    await nc.close();
  }
}

describe('startNats: wherever the server comes from (NATS_URL, nats-server or a container)', () => {
  it('JetStream stores and returns a message under the suite prefix', async () => {
    const nats = await startNats();
    try {
      assert.match(nats.prefix, /^t[0-9a-z]{8}$/);
      const seq = await storeOne(nats, 'hello');
      assert.equal(await readOne(nats, seq), 'hello');
    } finally {
      await dropStream(nats); // a shared NATS_URL server keeps no trace of the test
      await nats.stop({ removeStore: true });
    }
  });
});

describe('startNats: a spawned nats-server', { skip }, () => {
  it('JetStream stores a message; restart() keeps the stream and the message on the same URL', async () => {
    const nats = await startNats();
    try {
      assert.equal(nats.kind, 'spawned');
      assert.equal(nats.canRestart, true);
      const url = nats.url;
      const seq = await storeOne(nats, 'survives');
      await nats.restart();
      assert.equal(nats.url, url);
      assert.equal(await readOne(nats, seq), 'survives');
      assert.match(nats.logTail(200), /stopped \(SIGTERM\); started again on the same port and store/);
    } finally {
      await nats.stop({ removeStore: true });
    }
  });

  it('stop() refuses connections; start() brings it back on the same URL with the data', async () => {
    const nats = await startNats();
    try {
      const seq = await storeOne(nats, 'kept while down');
      await nats.stop();
      await assert.rejects(connect({ servers: nats.url, reconnect: false, timeout: 500 }));
      await nats.start();
      assert.equal(await readOne(nats, seq), 'kept while down');
    } finally {
      await nats.stop({ removeStore: true });
    }
  });

  it('kill() is a crash (SIGKILL); start() recovers the stored message', async () => {
    const nats = await startNats();
    try {
      const seq = await storeOne(nats, 'crash-safe');
      await nats.kill();
      await assert.rejects(connect({ servers: nats.url, reconnect: false, timeout: 500 }));
      await nats.start();
      assert.equal(await readOne(nats, seq), 'crash-safe');
    } finally {
      await nats.stop({ removeStore: true });
    }
  });

  it('two calls give two servers: different ports, stores and prefixes', async () => {
    const [a, b] = await Promise.all([startNats(), startNats()]);
    try {
      assert.notEqual(new URL(a.url).port, new URL(b.url).port);
      assert.notEqual(new URL(a.url).port, '4222');
      assert.notEqual(a.storeDir, b.storeDir);
      assert.notEqual(a.prefix, b.prefix);
      assert.match(a.prefix, /^t[0-9a-z]{8}$/);
    } finally {
      await Promise.all([a.stop({ removeStore: true }), b.stop({ removeStore: true })]);
    }
  });

  it('jetstream: false gives a core-only server', async () => {
    const nats = await startNats({ jetstream: false });
    const nc = await connect({ servers: nats.url });
    try {
      await assert.rejects(jetstreamManager(nc, { timeout: 1_000 }), /jetstream|503|no responders/i);
    } finally {
      await nc.close();
      await nats.stop({ removeStore: true });
    }
  });

  it('a server that cannot start fails naming the binary, its extra args and its output', async () => {
    await assert.rejects(startNats({ args: ['--no-such-flag'] }), /could not start .*nats-server \(extra args: --no-such-flag\): \[NATS_SERVER_START_FAILED\] nats-server exited/s);
  });
});

describe('startNats with NATS_URL set', { skip }, () => {
  const withNatsUrl = async <T>(url: string, fn: () => Promise<T>): Promise<T> => {
    process.env.NATS_URL = url;
    try {
      return await fn();
    } finally {
      delete process.env.NATS_URL;
    }
  };

  it('uses that server (external), a fresh prefix per call; stop() leaves it up, restart() refuses', async () => {
    const real = await startNats();
    try {
      const [a, b] = await withNatsUrl(real.url, () => Promise.all([startNats(), startNats()]));
      assert.equal(a.kind, 'external');
      assert.equal(a.url, real.url);
      assert.equal(a.canRestart, false);
      assert.notEqual(a.prefix, b.prefix);
      await a.stop({ removeStore: true });
      assert.equal(a.storeDir, undefined);
      await (await connect({ servers: real.url })).close();
      await assert.rejects(a.restart(), /cannot restart the NATS server: NATS_URL=.*did not start/);
      await assert.rejects(a.kill(), /cannot kill/);
    } finally {
      await real.stop({ removeStore: true });
    }
  });

  it('NATS_URL pointing at nothing fails naming NATS_URL and what to do', async () => {
    const url = `nats://127.0.0.1:${await freePort()}`;
    await assert.rejects(withNatsUrl(url, () => startNats()), /NATS_URL=.* is set but not usable.*unset NATS_URL/s);
  });

  it('startCluster refuses, saying cluster tests should skip', async () => {
    await assert.rejects(withNatsUrl('nats://127.0.0.1:1', () => startCluster(3)), /cannot use NATS_URL.*skip cluster tests/);
  });
});

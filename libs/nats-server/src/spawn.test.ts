import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findNatsServer, spawnNatsServer } from './index.js';

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

describe('spawnNatsServer', () => {
  it('starts on a free port (never 4222), stops on SIGTERM, and restarts on the same port', async (t) => {
    if (!findNatsServer()) return t.skip('nats-server is not installed');
    const storeDir = await mkdtemp(join(tmpdir(), 'nats-store-'));
    try {
      const first = await spawnNatsServer({ storeDir });
      assert.notEqual(first.port, 4222);
      assert.ok(await canConnect(first.port));
      await first.stop();
      assert.equal(first.running, false);
      assert.equal(await canConnect(first.port), false);
      const again = await spawnNatsServer({ storeDir, port: first.port });
      assert.equal(again.url, first.url);
      await again.kill();
    } finally {
      await rm(storeDir, { recursive: true, force: true });
    }
  });

  it('a server that cannot start says why, with its log', async (t) => {
    if (!findNatsServer()) return t.skip('nats-server is not installed');
    await assert.rejects(spawnNatsServer({ storeDir: '/tmp/x', args: ['--no-such-flag'] }), /nats-server exited .*\n/s);
  });
});

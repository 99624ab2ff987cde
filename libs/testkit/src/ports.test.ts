import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { freePort } from './index.js';
import { freePorts } from './ports.js';

describe('freePort', () => {
  it('gives a port that can be bound on 127.0.0.1', async () => {
    const port = await freePort();
    assert.ok(port > 1024 && port !== 4222);
    const srv = createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => resolve());
    });
    await new Promise((resolve) => srv.close(resolve));
  });

  it('freePorts(n) gives n distinct ports (a cluster needs 3 per node)', async () => {
    const ports = await freePorts(9);
    assert.equal(new Set(ports).size, 9);
  });
});

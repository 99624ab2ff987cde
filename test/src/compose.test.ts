// docker-compose.yml cannot run here (no Docker engine): this keeps it honest instead.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadBusConfig } from '@bus/bus';
import { topology } from '@bus/streams';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../../', import.meta.url));
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, { image?: string; build?: unknown; command?: string[]; environment?: Record<string, string> }>;
};
const infra = new Set(['nats1', 'nats2', 'nats3', 'bus-init']);
const serviceDirs = readdirSync(join(root, 'services')).filter((d) => existsSync(join(root, 'services', d, 'package.json')));

describe('docker-compose.yml', () => {
  it('runs one container per service in services/, and nothing else beside NATS and the topology job', () => {
    const busServices = Object.keys(compose.services).filter((s) => !infra.has(s)).sort();
    assert.deepEqual(busServices, [...serviceDirs].sort());
    for (const s of busServices) assert.equal(compose.services[s]?.environment?.SERVICE, s, `${s} runs its own main`);
  });

  it('is a three-node JetStream cluster from the official image, with routes to the other two', () => {
    for (const n of ['nats1', 'nats2', 'nats3']) {
      const svc = compose.services[n]!;
      assert.match(svc.image ?? '', /^nats:/);
      const cmd = svc.command!.join(' ');
      assert.match(cmd, /-js/);
      assert.match(cmd, /--cluster_name bus/);
      for (const other of ['nats1', 'nats2', 'nats3'].filter((o) => o !== n)) assert.match(cmd, new RegExp(`nats://${other}:6222`));
    }
  });

  it('every stream and bucket is R3 there, from the environment each bus container gets', () => {
    for (const [name, svc] of Object.entries(compose.services).filter(([s]) => !s.startsWith('nats'))) {
      const config = loadBusConfig(svc.environment ?? {});
      assert.equal(config.BUS_REPLICAS, 3, `${name} has BUS_REPLICAS=3`);
      const t = topology({ replicas: config.BUS_REPLICAS });
      for (const s of t.streams) assert.equal(s.replicas, 3, `${name}: ${s.name}`);
      for (const b of t.kv) assert.equal(b.replicas, 3, `${name}: ${b.bucket}`);
      assert.match(config.NATS_URL, /nats1.*nats2.*nats3/);
    }
  });
});

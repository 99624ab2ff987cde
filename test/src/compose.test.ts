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
type Service = {
  image?: string; build?: { context?: string } | string; command?: string[]; environment?: Record<string, string>; ports?: string[];
  healthcheck?: { test: string[] }; depends_on?: Record<string, { condition: string }> | string[]; stop_grace_period?: string;
};
const composeText = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service> };
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
    for (const [name, svc] of Object.entries(compose.services).filter(([s]) => !s.startsWith('nats') && s !== 'sandbox')) {
      const config = loadBusConfig(svc.environment ?? {});
      assert.equal(config.BUS_REPLICAS, 3, `${name} has BUS_REPLICAS=3`);
      const t = topology({ replicas: config.BUS_REPLICAS });
      for (const s of t.streams) assert.equal(s.replicas, 3, `${name}: ${s.name}`);
      for (const b of t.kv) assert.equal(b.replicas, 3, `${name}: ${b.bucket}`);
      assert.match(config.NATS_URL, /nats1.*nats2.*nats3/);
    }
  });

  const busContainers = Object.keys(compose.services).filter((s) => !s.startsWith('nats'));
  const seconds = (d: string | undefined) => {
    const m = /^(\d+)(s|m)$/.exec(d ?? '');
    return m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : 0;
  };

  it('every container has a healthcheck, and the services wait for healthy NATS nodes and a successful bus-init', () => {
    for (const [name, svc] of Object.entries(compose.services).filter(([s]) => s !== 'bus-init')) {
      assert.ok(svc.healthcheck?.test?.length, `${name} has a healthcheck`);
    }
    for (const n of ['nats1', 'nats2', 'nats3']) assert.match(compose.services[n]!.healthcheck!.test.join(' '), /8222\/healthz/, 'NATS: healthy = JetStream current with a meta leader');
    for (const s of ['ingest', 'transform', 'deliver', 'reconcile']) {
      const deps = compose.services[s]!.depends_on as Record<string, { condition: string }>;
      assert.equal(deps['bus-init']?.condition, 'service_completed_successfully', `${s} after bus-init`);
      for (const n of ['nats1', 'nats2', 'nats3']) assert.equal(deps[n]?.condition, 'service_healthy', `${s} waits for ${n} healthy`);
      assert.match(compose.services[s]!.healthcheck!.test.join(' '), /\/readyz/, `${s}'s healthcheck is its readiness`);
    }
    for (const s of ['deliver', 'reconcile']) assert.equal((compose.services[s]!.depends_on as Record<string, { condition: string }>).sandbox?.condition, 'service_healthy');
  });

  it('bus-init waits for healthy nodes and keeps trying while the cluster has no JetStream meta leader', () => {
    const init = compose.services['bus-init']!;
    for (const n of ['nats1', 'nats2', 'nats3']) assert.equal((init.depends_on as Record<string, { condition: string }>)[n]?.condition, 'service_healthy');
    const cmd = init.command!.join(' ');
    assert.match(cmd, /streams apply --wait (\d+)/);
    assert.ok(Number(/--wait (\d+)/.exec(cmd)![1]) >= 60, 'long enough for an election');
  });

  it('stop grace above the 30 s drain for every bus container', () => {
    for (const s of busContainers) assert.ok(seconds(compose.services[s]!.stop_grace_period) > 30, `${s}: stop_grace_period ${compose.services[s]!.stop_grace_period}`);
  });

  it('one image for every bus container, built once from the one Dockerfile', () => {
    const images = new Set(busContainers.map((s) => compose.services[s]!.image));
    assert.equal(images.size, 1, `one image name: ${[...images].join(', ')}`);
    assert.ok([...images][0], 'named, so the build is shared');
    for (const s of busContainers) assert.deepEqual(compose.services[s]!.build, { context: '.' });
  });

  it('the Dockerfile: a supported Node (22 or 24), devDependencies pruned before the runtime stage, every workspace the lock file names copied', () => {
    const docker = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const froms = [...docker.matchAll(/^FROM node:(\d+)/gm)].map((m) => Number(m[1]));
    assert.ok(froms.length >= 2 && froms.every((v) => v === 22 || v === 24), `node ${froms.join(', ')}`);
    assert.match(docker, /npm prune --omit=dev/);
    const runtime = docker.slice(docker.lastIndexOf('FROM '));
    assert.doesNotMatch(runtime, /npm (ci|install)/, 'nothing installed in the runtime stage');
    assert.doesNotMatch(runtime, /COPY --from=build \/bus \/bus/, 'the runtime copies what runs, not the build tree');
    const workspaces = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
    for (const w of workspaces) assert.match(docker, new RegExp(`COPY ${w.replace('/*', '').replace('*', '')}[ /]`), `${w} is in the build context the lock file expects`);
  });

  it('NATS requires a user and password, from the environment, and every bus container uses them', () => {
    for (const n of ['nats1', 'nats2', 'nats3']) {
      const cmd = compose.services[n]!.command!.join(' ');
      assert.match(cmd, /--user \$\{NATS_USER:\?[^}]*\} --pass \$\{NATS_PASSWORD:\?[^}]*\}/, `${n} requires auth from .env`);
    }
    for (const s of busContainers.filter((x) => x !== 'sandbox')) {
      assert.match(compose.services[s]!.environment!.NATS_USER!, /^\$\{NATS_USER:\?/);
      assert.match(compose.services[s]!.environment!.NATS_PASSWORD!, /^\$\{NATS_PASSWORD:\?/);
    }
    assert.deepEqual(compose.services.nats1!.ports, ['127.0.0.1:4222:4222'], 'the client port is published to this host only');
  });

  it('.env.example names every variable the compose file requires or reads, and .env is never committed nor sent to the build', () => {
    const example = readFileSync(join(root, '.env.example'), 'utf8');
    const used = new Set([...composeText.matchAll(/\$\{([A-Z_]+)(?::[?-][^}]*)?\}/g)].map((m) => m[1]!));
    assert.ok(used.size >= 10);
    for (const v of used) assert.match(example, new RegExp(`^#? ?${v}=`, 'm'), `.env.example lacks ${v}`);
    assert.match(readFileSync(join(root, '.gitignore'), 'utf8'), /^\.env$/m);
    assert.match(readFileSync(join(root, '.dockerignore'), 'utf8'), /^\.env$/m);
  });
});

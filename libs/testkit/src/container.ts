import type { StartOptions, TestNats } from './nats.js';
import { uniquePrefix } from './prefix.js';
import { waitReady } from './ready.js';

/** The image for the container fallback: a 2.10 server, JetStream on with `-js`. */
const IMAGE = 'nats:2.10-alpine';
const KEEP_LINES = 200;

/** Internal: true when testcontainers is installed and a Docker engine answers. */
export async function containerRuntimeAnswers(): Promise<boolean> {
  try {
    const tc = await import('testcontainers'); // optional dependency: may be missing
    await tc.getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

/**
 * Internal: nats-server in a container, for machines without nats-server but with Docker.
 * GenericContainer, not @testcontainers/nats: its NatsContainer always adds --user/--pass,
 * and a URL without credentials is what every suite passes around.
 */
export async function startContainer(opts: StartOptions & { jetstream: boolean }): Promise<TestNats> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const lines: string[] = [];
  const started = await new GenericContainer(IMAGE)
    .withCommand([...(opts.jetstream ? ['-js'] : []), ...(opts.args ?? [])])
    .withExposedPorts(4222)
    .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
    .withLogConsumer((stream) => {
      stream.on('data', (chunk: Buffer | string) => {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        lines.splice(0, Math.max(0, lines.length - KEEP_LINES));
      });
    })
    .start()
    .catch((err: Error) => {
      throw new Error(`a Docker engine answers, but the ${IMAGE} container did not start: ${err.message}. ` +
        'Install nats-server (apt-get install -y nats-server) to avoid Docker', { cause: err });
    });
  const url = `nats://${started.getHost()}:${started.getMappedPort(4222)}`;
  const logTail = (n = 50) => lines.slice(-n).join('\n');
  try {
    await waitReady(url, { jetstream: opts.jetstream, auth: opts.auth, log: logTail });
  } catch (err) {
    await started.stop();
    throw err;
  }
  const refuse = (op: string) => async () => {
    throw new Error(`cannot ${op} the NATS container: the container fallback keeps one server per suite and no ` +
      'fixed port. Skip this test when canRestart is false, or install nats-server (apt-get install -y nats-server)');
  };
  let stopped = false;
  return {
    url, prefix: uniquePrefix(), kind: 'container', canRestart: false,
    async stop() {
      if (stopped) return;
      stopped = true;
      await started.stop();
    },
    start: refuse('start'), restart: refuse('restart'), kill: refuse('kill'),
    logTail,
  };
}

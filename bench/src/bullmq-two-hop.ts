// A peer beside the raw two-hop, in the same run: what a user might pick instead of the bus
// for "a job, then another job". BullMQ on Redis doing the same two hops with the same
// messages: this process adds a job to queue A → a worker process (decode, add to queue B
// with a job id, complete) → this process's worker on B times each arrival. Jobs are removed
// on completion, as a production queue would be set up. No Redis answering: the part is skipped.
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { forkTracked, stopChild, waitForMessage } from './children.js';
import type { Run } from './load.js';
import { type TwoHop, twoHopPhases } from './two-hop.js';

export function redisConnection(url: string) {
  const u = new URL(url);
  // BullMQ's workers need maxRetriesPerRequest null (they block on Redis)
  return { host: u.hostname, port: Number(u.port || 6379), password: u.password || undefined, db: Number(u.pathname.slice(1) || 0), maxRetriesPerRequest: null };
}

/** Whether a Redis answers PING at `url` within a second. */
export async function redisAnswers(url: string): Promise<boolean> {
  const r = new Redis({ ...redisConnection(url), lazyConnect: true, connectTimeout: 1_000, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

export async function startBullTwoHop(redisUrl: string, prefix: string, workerWindow = 256): Promise<TwoHop> {
  const connection = redisConnection(redisUrl);
  const [queueA, queueB] = ['hop-a', 'hop-b'];
  const first = new Queue(queueA, { connection, prefix });
  const worker = forkTracked(fileURLToPath(new URL('./bullmq-worker.js', import.meta.url)), [], {
    env: { ...process.env, REDIS_URL: redisUrl, PREFIX: prefix, QUEUE_A: queueA, QUEUE_B: queueB, WINDOW: String(workerWindow) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await waitForMessage(worker, (m) => ((m as { type?: string })?.type === 'ready' ? true : undefined), 15_000, 'BullMQ worker');

  // the far end: "<phase>.<i>" in the job says whose message it is
  const runs = new Map<string, Run>();
  const sink = new Worker(queueB, async (job) => {
    const id = (job.data as { id: string }).id;
    const dot = id.indexOf('.');
    runs.get(id.slice(0, dot))?.arrive(Number(id.slice(dot + 1)));
  }, { connection, prefix, concurrency: 512 });
  await sink.waitUntilReady();

  const sender = (tag: string, messages: Uint8Array[]) => {
    const bodies = messages.map((m) => Buffer.from(m).toString('base64')); // job data is JSON
    return (i: number) => first.add('hop', { b: bodies[i]!, id: `${tag}.${i}` }, { jobId: `${tag}.${i}`, removeOnComplete: true }).then(() => undefined);
  };
  return {
    ...twoHopPhases(runs, 'q', sender),
    async close() {
      await stopChild(worker);
      await sink.close();
      // leave nothing in the peer's Redis
      const second = new Queue(queueB, { connection, prefix });
      for (const q of [first, second]) {
        await q.obliterate({ force: true }).catch(() => {});
        await q.close();
      }
    },
  };
}

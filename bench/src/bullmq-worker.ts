// The middle of the BullMQ two-hop pipeline, in its own process like the raw worker
// (two-hop-worker.ts): per job from queue A, msgpack-decode its bytes and add a job to
// queue B with a job id (BullMQ's dedup), complete once B has it. WINDOW jobs at once.
// env: REDIS_URL, PREFIX, QUEUE_A, QUEUE_B, WINDOW
import { decode } from '@bus/envelope';
import { Queue, Worker } from 'bullmq';
import { redisConnection } from './bullmq-two-hop.js';

const env = process.env;
const connection = redisConnection(env.REDIS_URL!);
const prefix = env.PREFIX!;
const next = new Queue(env.QUEUE_B!, { connection, prefix });
const worker = new Worker(
  env.QUEUE_A!,
  async (job) => {
    const { b, id } = job.data as { b: string; id: string };
    decode(Buffer.from(b, 'base64')); // the work every real hop does at least once
    await next.add('hop', { b, id }, { jobId: `b.${id}`, removeOnComplete: true });
  },
  { connection, prefix, concurrency: Number(env.WINDOW ?? 256), autorun: false },
);
await worker.waitUntilReady();
void worker.run();
process.send?.({ type: 'ready' });
const stop = async () => {
  await worker.close();
  await next.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('disconnect', () => process.exit(0)); // the bench is gone (even SIGKILLed): so is this

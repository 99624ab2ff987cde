/**
 * Keeps a low watermark over work that finishes out of order: the highest sequence below which
 * everything has finished (what a checkpoint may say). `window` bounds the pieces of work
 * dispatched but not yet under the watermark, and so memory and checkpoint lag.
 */
export function createPool(startWatermark: number, window: number) {
  const order: { seq: number; done: boolean }[] = [];
  let head = 0;
  let watermark = startWatermark;
  let failure: { err: unknown } | undefined;
  let wake: (() => void) | undefined;

  const advance = () => {
    while (head < order.length && order[head]!.done) watermark = order[head++]!.seq;
    if (head > 1_024) {
      order.splice(0, head);
      head = 0;
    }
    const w = wake;
    wake = undefined;
    w?.();
  };
  const waitUntil = async (ready: () => boolean) => {
    while (!failure && !ready()) await new Promise<void>((r) => (wake = r));
    if (failure) throw failure.err;
  };

  return {
    /** Everything up to here has finished. */
    get watermark() {
      return watermark;
    },
    /** Resolves when there is room for one more; rejects with the first failure. */
    slot: () => waitUntil(() => order.length - head < window),
    /** Counts `seq` (and the sequences since the previous piece of work) as finished once `work` is. */
    track(seq: number, work: Promise<unknown>): void {
      const entry = { seq, done: false };
      order.push(entry);
      work.then(() => {
        entry.done = true;
      }, (err: unknown) => {
        failure ??= { err };
      }).finally(advance);
    },
    /** Resolves when everything dispatched has finished; rejects with the first failure. */
    drain: () => waitUntil(() => head === order.length),
  };
}

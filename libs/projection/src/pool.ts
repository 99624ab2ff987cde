/**
 * Applies work concurrently while keeping a low watermark: the highest sequence below which
 * everything has finished. Work on one key runs in dispatch order (no pointless
 * compare-and-set races on a busy entity); other keys run side by side. `window` bounds the
 * sequences dispatched but not yet under the watermark, and so memory and checkpoint lag.
 */
export function createPool(startWatermark: number, window: number) {
  const order: { seq: number; done: boolean }[] = [];
  let head = 0;
  let watermark = startWatermark;
  let failure: { err: unknown } | undefined;
  const chains = new Map<string, Promise<void>>();
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
    /** Runs `fn` for `seq` after earlier work on the same key. */
    run(seq: number, key: string, fn: () => Promise<void>): void {
      const entry = { seq, done: false };
      order.push(entry);
      const p = (chains.get(key) ?? Promise.resolve())
        .then(fn)
        .then(() => {
          entry.done = true;
        }, (err: unknown) => {
          failure ??= { err };
        })
        .finally(() => {
          if (chains.get(key) === p) chains.delete(key);
          advance();
        });
      chains.set(key, p);
    },
    /** Counts `seq` as finished with nothing to do (an unreadable event). */
    skip(seq: number): void {
      order.push({ seq, done: true });
      advance();
    },
    /** Resolves when everything dispatched has finished; rejects with the first failure. */
    drain: () => waitUntil(() => head === order.length),
  };
}

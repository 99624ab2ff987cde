/**
 * Yields what `source` yields, asking it for the next item as soon as the current one is handed
 * out: the next projection page is read from NATS while the caller compares the current one
 * with the target. At most one item is read ahead (memory: two pages).
 */
export async function* prefetched<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let next = it.next();
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = it.next();
      // observed here too, so a read that fails after the caller stopped is no unhandled rejection
      next.catch(() => undefined);
      yield r.value;
    }
  } finally {
    await it.return?.();
  }
}

import type { Counter, Gauge, LabelValues } from 'prom-client';

type Collected = Counter<string> | Gauge<string>;

const flushers = new WeakMap<Collected, Set<() => void>>();

/**
 * Runs `flush` each time `metric` is read (a scrape, `registry.metrics()`, `get()`), before
 * its values are: prom-client calls a metric's `collect` then. Any `collect` the metric had
 * still runs, after. Returns a function that runs `flush` a last time and unregisters it.
 */
export function onCollect(metric: Collected, flush: () => void): () => void {
  let set = flushers.get(metric);
  if (!set) {
    const all = new Set<() => void>();
    set = all;
    flushers.set(metric, all);
    const own = (metric as { collect?: () => unknown }).collect;
    (metric as { collect?: () => unknown }).collect = function collect(this: unknown) {
      for (const f of all) f();
      return own?.call(this);
    };
  }
  set.add(flush);
  const registered = set;
  return () => {
    flush();
    registered.delete(flush);
  };
}

/** A counter child counted in a plain number and added to the counter when it is read. */
export interface Tally {
  inc(): void;
  /** Adds what is left and unregisters (on stop). */
  close(): void;
}

/**
 * A per-message counter: prom-client's `labels(...).inc()` validates and hashes the labels on
 * every call, which costs more than the work counted on a hot path (consume's). The count
 * reaches the metric at the next read, so a scrape sees the same value.
 */
export function tally(counter: Counter<string>, labels: LabelValues<string>): Tally {
  let n = 0;
  const close = onCollect(counter, () => {
    if (n === 0) return;
    counter.inc(labels, n);
    n = 0;
  });
  return {
    inc() {
      n++;
    },
    close,
  };
}

/**
 * Tallies of one counter by label set, made on first use: `inc(key, labels)` counts under
 * `labels`, found by `key` (the caller's cheap name for them, e.g. the one label's value).
 */
export function tallyBy(counter: Counter<string>): (key: string, labels: LabelValues<string>) => void {
  const byKey = new Map<string, Tally>();
  return (key, labels) => {
    let t = byKey.get(key);
    if (!t) {
      t = tally(counter, labels);
      byKey.set(key, t);
    }
    t.inc();
  };
}

/** A gauge child that follows a number read at scrape time (`current`), summed with others of the same labels. */
export function gaugeOf(gauge: Gauge<string>, labels: LabelValues<string>, current: () => number): { close(): void } {
  let reported = 0;
  const report = () => {
    const now = current();
    if (now !== reported) gauge.inc(labels, now - reported);
    reported = now;
  };
  const unregister = onCollect(gauge, report);
  return {
    close() {
      unregister();
      // a stopped consumer holds nothing: take back what it last reported
      if (reported !== 0) gauge.dec(labels, reported);
      reported = 0;
    },
  };
}

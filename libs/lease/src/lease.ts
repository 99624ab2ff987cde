import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { BusError } from '@bus/errors';
import type { Logger } from '@bus/observability';
import type { KV } from '@nats-io/kv';
import { bucketTtl, decodeRecord, encodeRecord, isCasConflict, type LeaseRecord, unavailable } from './record.js';

/** Options for {@link acquireLease}. */
export interface LeaseOptions<D = unknown> {
  /** Required. The bucket holding leases (`bus.kv(bus.names.kv.leases)`). */
  kv: KV;
  /** Required. What is held, as a KV key, e.g. `reconcile.crm` or `source.stripe`. */
  key: string;
  /** Who holds it, for logs and for whoever finds it taken. Default `<hostname>:<pid>:<random>`. */
  holder?: string;
  /** Required. How long the lease lives without a renewal: a dead holder's lease is taken over after this. 100 ms to 24 h. */
  ttlMs: number;
  /** How often it is renewed automatically. Default ttlMs / 3 (and a third of the bucket's max age, if that is shorter). */
  renewEveryMs?: number;
  /** Renew on a timer until released. Default true; false: the caller renews (renew()) more often than ttlMs. */
  autoRenew?: boolean;
  /** Small JSON kept with the lease (e.g. a run id), at most 8 KiB. Default none. */
  data?: D;
  log?: Logger;
}

/** Who held the key before, when this acquisition took over an expired lease (its holder died or hung). */
export interface PreviousHolder {
  holder: string;
  expiresAtMs: number;
  data?: unknown;
}

/** One holder's claim on a key, until released, lost or expired. */
export interface Lease<D = unknown> {
  readonly key: string;
  readonly holder: string;
  /** Fencing token: the KV revision of the acquiring write. Every later acquisition of the key has a larger one. */
  readonly token: number;
  readonly ttlMs: number;
  /** Set when this lease took over an expired one. */
  readonly previous?: PreviousHolder;
  /**
   * Aborted when the lease is no longer held: a renewal found it taken over, or no renewal
   * succeeded for ttlMs (NATS unreachable, the process frozen). Its reason is a `LEASE_LOST`
   * BusError. Not aborted by release().
   */
  readonly lost: AbortSignal;
  /** True until released, lost, or ttlMs past the last successful write. */
  held(): boolean;
  /** Extends the expiry now. True: held for another ttlMs; false: lost (and `lost` aborted). Throws LEASE_UNAVAILABLE when NATS did not answer but the lease has not expired yet. */
  renew(): Promise<boolean>;
  /** Stops renewing and deletes the key if it is still ours (compare-and-set). Never throws; safe to call twice. */
  release(): Promise<void>;
  /** The JSON kept with the lease; set() writes it (and renews): false when the lease was lost meanwhile. */
  readonly data: { get(): D | undefined; set(value: D): Promise<boolean> };
}

const KEY = /^[-/=\w]+(\.[-/=\w]+)*$/;

function check(o: LeaseOptions<unknown>): void {
  const problems: string[] = [];
  if (!o.kv || typeof o.kv.get !== 'function') problems.push('kv must be an open KV bucket (bus.kv(bus.names.kv.leases))');
  if (typeof o.key !== 'string' || !KEY.test(o.key)) problems.push(`key must be a KV key: letters, digits, - _ = / and dots between tokens (got "${o.key}")`);
  if (!Number.isInteger(o.ttlMs) || o.ttlMs < 100 || o.ttlMs > 86_400_000) problems.push(`ttlMs must be a whole number of ms from 100 to 86400000 (got ${o.ttlMs})`);
  if (o.renewEveryMs !== undefined && !(Number.isInteger(o.renewEveryMs) && o.renewEveryMs >= 10 && o.renewEveryMs < o.ttlMs)) {
    problems.push(`renewEveryMs must be a whole number of ms from 10 to below ttlMs (got ${o.renewEveryMs})`);
  }
  if (o.holder !== undefined && (typeof o.holder !== 'string' || o.holder.length === 0 || o.holder.length > 200)) problems.push('holder must be 1 to 200 characters');
  if (problems.length) throw new BusError('LEASE_INVALID', 'permanent', `lease options are invalid: ${problems.join('; ')}`);
}

const defaultHolder = () => `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;

/**
 * Takes `key` if nobody holds a live lease on it: undefined when someone does (no waiting),
 * else a {@link Lease} renewed every ttlMs/3 (unref'd timer) until released. A key whose
 * expiry has passed (its holder died) is taken over by compare-and-set, so of any number of
 * contenders exactly one wins. Throws LEASE_UNAVAILABLE when NATS does not answer.
 */
export async function acquireLease<D = unknown>(o: LeaseOptions<D>): Promise<Lease<D> | undefined> {
  check(o);
  const holder = o.holder ?? defaultHolder();
  const log = o.log?.child({ lease: o.key, holder });
  let maxAgeMs: number;
  let entry: Awaited<ReturnType<KV['get']>>;
  try {
    maxAgeMs = await bucketTtl(o.kv);
    entry = await o.kv.get(o.key);
  } catch (err) {
    throw unavailable(o.key, 'read', err);
  }
  const current = decodeRecord(entry);
  if (current && current.expiresAtMs > Date.now()) return undefined;

  // a bucket max age shorter than the ttl deletes an unrenewed key sooner: renew within it too
  const lifeMs = maxAgeMs > 0 ? Math.min(o.ttlMs, maxAgeMs) : o.ttlMs;
  const renewEveryMs = Math.min(o.renewEveryMs ?? Math.floor(o.ttlMs / 3), Math.floor(lifeMs / 3));
  const at = new Date();
  let record: LeaseRecord = {
    holder, nonce: randomUUID(), expiresAtMs: at.getTime() + o.ttlMs, acquiredAt: at.toISOString(), renewedAt: at.toISOString(),
    ...(o.data === undefined ? {} : { data: o.data }),
  };
  let started = performance.now();
  let revision: number;
  try {
    const text = encodeRecord(o.key, record);
    revision = entry ? await o.kv.update(o.key, text, entry.revision) : await o.kv.create(o.key, text);
  } catch (err) {
    if (isCasConflict(err)) return undefined; // another contender wrote first
    if (err instanceof BusError) throw err;
    throw unavailable(o.key, 'write', err);
  }
  const token = revision;
  const previous = current ? { holder: current.holder, expiresAtMs: current.expiresAtMs, data: current.data } : undefined;
  if (previous) log?.warn({ token, previousHolder: previous.holder, expiredAt: new Date(previous.expiresAtMs).toISOString() }, 'lease taken over from an expired holder');
  else log?.debug({ token }, 'lease acquired');

  const ctl = new AbortController();
  let released = false;
  let deadline = started + lifeMs; // monotonic clock: a wall-clock jump does not extend it
  let renewTimer: NodeJS.Timeout | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => undefined);
    return p;
  };
  const stopTimers = () => {
    clearTimeout(renewTimer);
    clearTimeout(watchdog);
  };
  const markLost = (why: string) => {
    if (ctl.signal.aborted) return;
    stopTimers();
    log?.warn({ token, why }, 'lease lost: stop the work it guards');
    ctl.abort(new BusError('LEASE_LOST', 'transient', `lease "${o.key}" held by ${holder} (token ${token}) was lost: ${why}. Stop the work it guards; another holder may be doing it now`));
  };
  const armWatchdog = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      if (released) return;
      if (performance.now() < deadline) return armWatchdog(); // timers may fire a little early
      markLost(`no renewal succeeded for ${lifeMs} ms (NATS unreachable or this process stalled)`);
    }, Math.max(0, Math.ceil(deadline - performance.now())));
    watchdog.unref();
  };
  const held = () => !released && !ctl.signal.aborted && performance.now() < deadline;

  /** Compare-and-set from our last revision; false once someone else wrote the key. */
  async function write(next: LeaseRecord, adopted = false): Promise<boolean> {
    started = performance.now();
    try {
      revision = await o.kv.update(o.key, encodeRecord(o.key, next), revision);
    } catch (err) {
      if (err instanceof BusError) throw err;
      if (!isCasConflict(err)) {
        if (performance.now() < deadline) throw unavailable(o.key, 'renew', err);
        markLost(`NATS unreachable past the lease's expiry (${(err as Error).message})`);
        return false;
      }
      let now: LeaseRecord | undefined;
      let rev = 0;
      try {
        const e = await o.kv.get(o.key);
        now = decodeRecord(e);
        rev = e?.revision ?? 0;
      } catch (e) {
        throw unavailable(o.key, 'renew', e);
      }
      if (!adopted && now?.nonce === record.nonce) {
        revision = rev; // our own earlier write landed although its answer was lost
        return write(next, true);
      }
      markLost(now ? `taken over by ${now.holder}` : 'the key was deleted');
      return false;
    }
    record = next;
    deadline = started + lifeMs;
    armWatchdog();
    return true;
  }

  const renewed = (data: { data?: unknown } = {}): LeaseRecord => {
    const now = new Date();
    return { ...record, ...data, expiresAtMs: now.getTime() + o.ttlMs, renewedAt: now.toISOString() };
  };
  /** Writes `next` while held; a lease past its deadline is lost even if the watchdog has not run yet (a blocked event loop). */
  const whileHeld = (next: () => LeaseRecord) => serial(async () => {
    if (held()) return write(next());
    if (!released && performance.now() >= deadline) markLost(`not renewed within ${lifeMs} ms`);
    return false;
  });
  const renew = () => whileHeld(() => renewed());

  const schedule = (ms: number) => {
    if (o.autoRenew === false || released || ctl.signal.aborted) return;
    renewTimer = setTimeout(() => {
      renew().then(
        (ok) => ok && schedule(renewEveryMs),
        (err: Error) => {
          log?.warn({ err: err.message }, 'lease renewal failed; retrying before it expires');
          schedule(Math.max(10, Math.min(renewEveryMs, Math.floor(lifeMs / 10))));
        },
      );
    }, ms);
    renewTimer.unref();
  };
  armWatchdog();
  schedule(renewEveryMs);

  return {
    key: o.key, holder, token, ttlMs: o.ttlMs, lost: ctl.signal, ...(previous ? { previous } : {}),
    held,
    renew,
    release: () => serial(async () => {
      if (released) return;
      released = true;
      stopTimers();
      if (ctl.signal.aborted) return;
      try {
        await o.kv.delete(o.key, { previousSeq: revision });
        log?.debug({ token }, 'lease released');
      } catch (err) {
        if (!isCasConflict(err)) log?.warn({ err: (err as Error).message, ttlMs: o.ttlMs }, 'could not release the lease; it frees itself after its ttl');
      }
    }),
    data: {
      get: () => record.data as D | undefined,
      set: (value: D) => whileHeld(() => renewed({ data: value })),
    },
  };
}

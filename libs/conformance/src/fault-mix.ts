// What the misbehaving target does with each call, decided from the seed alone.
import { hashSeed, mulberry32 } from './prng.js';

/** How one PUT (or POST, PATCH, DELETE) is answered. */
export type PutFault =
  /** 200 at once: applied. */
  | 'ok'
  /** 503, not applied. */
  | 'unavailable'
  /** 429 with Retry-After, not applied. */
  | 'rateLimited'
  /** Applied, then no answer: the socket is held past the caller's timeout and destroyed. */
  | 'applyThenHang'
  /** No answer and nothing applied: the caller cannot know. */
  | 'hang'
  /** Applied, answered 200 after `slowMs` (within the caller's timeout). */
  | 'slow';

/** Fractions of calls, each 0…1; the PUT fractions together at most 1 (the rest answer at once). */
export interface FaultMix {
  unavailable: number;
  rateLimited: number;
  applyThenHang: number;
  hang: number;
  slow: number;
  /** Of lookups (GET): answered 503. */
  lookupUnavailable: number;
}

/** The mix of issue 11's measurement: 15 % 503, 10 % 429, 7 % apply-then-hang, 5 % hang; 5 % of lookups 503; plus 5 % slow. */
export const DEFAULT_FAULT_MIX: Readonly<FaultMix> = Object.freeze({
  unavailable: 0.15, rateLimited: 0.1, applyThenHang: 0.07, hang: 0.05, slow: 0.05, lookupUnavailable: 0.05,
});

/** No faults at all: a well-behaved target (a control run). */
export const NO_FAULTS: Readonly<FaultMix> = Object.freeze({ unavailable: 0, rateLimited: 0, applyThenHang: 0, hang: 0, slow: 0, lookupUnavailable: 0 });

const PUT_ORDER = ['unavailable', 'rateLimited', 'applyThenHang', 'hang', 'slow'] as const;

/** The mix with defaults filled in; throws naming every bad fraction. */
export function faultMix(partial: Partial<FaultMix> = {}): FaultMix {
  const mix = { ...DEFAULT_FAULT_MIX, ...partial };
  const problems = Object.entries(mix).filter(([, v]) => !(typeof v === 'number' && v >= 0 && v <= 1)).map(([k, v]) => `${k} must be a fraction 0…1, got ${v}`);
  const sum = PUT_ORDER.reduce((s, k) => s + mix[k], 0);
  if (sum > 1 + 1e-9) problems.push(`the PUT fractions add up to ${sum.toFixed(3)}, more than 1`);
  if (problems.length) throw new RangeError(`fault mix: ${problems.join('; ')}`);
  return mix;
}

/**
 * The fault for attempt `n` (1, 2, …) of the call with idempotency key `key`: a function of
 * (seed, key, n) only, so the same seed gives every command the same faults whatever order
 * the calls arrive in. After `faultsSoFar` reaches `maxFaultsPerKey` the call succeeds: the
 * faults are transient by construction, so a bus that dead-letters one has a defect (a real
 * outage longer than the retry budget is another test).
 */
export function putFault(mix: FaultMix, seed: number, key: string, n: number, faultsSoFar: number, maxFaultsPerKey: number): PutFault {
  const r = mulberry32(hashSeed(seed, 'put', key, n))();
  let edge = 0;
  for (const kind of PUT_ORDER) {
    edge += mix[kind];
    if (r < edge) return kind === 'slow' || faultsSoFar < maxFaultsPerKey ? kind : 'ok';
  }
  return 'ok';
}

/** Whether lookup number `n` of `path` answers 503. */
export function lookupFails(mix: FaultMix, seed: number, path: string, n: number): boolean {
  return mulberry32(hashSeed(seed, 'get', path, n))() < mix.lookupUnavailable;
}

/** Faults that count towards `maxFaultsPerKey` (a slow answer is an answer). */
export const isFailure = (f: PutFault): boolean => f !== 'ok' && f !== 'slow';

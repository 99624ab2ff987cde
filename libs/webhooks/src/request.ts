import { BusError } from '@bus/errors';
import type { RejectReason, Rejected, RequestHeaders } from './types.js';

/** A refusal with its reason and a log-safe detail. */
export function reject(reason: RejectReason, detail: string): Rejected {
  return { ok: false, reason, detail };
}

/**
 * One header's value, or undefined when absent or empty. Names are looked up lower-cased as
 * Node gives them, then case-insensitively (a caller that built the object itself). An array
 * (Node's `headersDistinct`) is joined with `", "`, as Node joins a repeated header.
 */
export function header(headers: RequestHeaders, name: string): string | undefined {
  const lower = name.toLowerCase();
  let value = headers[lower];
  if (value === undefined) {
    const key = Object.keys(headers).find((k) => k.toLowerCase() === lower);
    value = key === undefined ? undefined : headers[key];
  }
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text === undefined || text.trim() === '' ? undefined : text;
}

const UNIX_SECONDS = /^\d{1,11}$/;

/**
 * The signed timestamp (unix seconds) if it is within `toleranceSec` of now, both ways: an
 * old one is a replay or a stuck queue, a future one a wrong clock or a forged timestamp.
 */
export function checkTimestamp(raw: string, headerName: string, nowMs: number, toleranceSec: number): number | Rejected {
  const text = raw.trim();
  if (!UNIX_SECONDS.test(text)) {
    const hint = /^\d{12,}$/.test(text) ? ' (it looks like milliseconds)' : '';
    return reject('malformed_header', `${headerName} must be unix seconds${hint}`);
  }
  const timestamp = Number(text);
  const aheadSec = timestamp - nowMs / 1000;
  if (Math.abs(aheadSec) > toleranceSec) {
    const where = aheadSec > 0 ? 'in the future' : 'in the past';
    return reject('timestamp_outside_tolerance',
      `${headerName} is ${Math.round(Math.abs(aheadSec))} s ${where}; at most ${toleranceSec} s either way is accepted (a replay, or a clock is wrong)`);
  }
  return timestamp;
}

/**
 * Throws unless the body is bytes. A string or object means the body went through a parser
 * first, and its signature can no longer be checked: a bug in the caller, not a bad request.
 */
export function assertRawBody(body: unknown): asserts body is Uint8Array {
  if (body instanceof Uint8Array) return;
  const got = body === null ? 'null' : typeof body;
  throw new BusError('WEBHOOK_BODY_NOT_RAW', 'permanent',
    `verify() needs the raw request body as a Buffer, got ${got}. Read the body as bytes before any JSON or text parser; ` +
      'a parsed and re-serialised body no longer matches its signature');
}

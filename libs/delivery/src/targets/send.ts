import { classifyHttp } from '@bus/errors';
import { type HeaderSource, headerValue, parseRateLimitReset, parseRetryAfter } from '@bus/retry';
import { type Dispatcher, request } from 'undici';
import { type CallResult, elapsedMs } from '../target.js';

export interface HttpRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/** The call's result and, for reads, the answer's body. */
export type HttpAnswer = CallResult & { body?: string };

/** What the classification needs of an answer, from either client. */
interface RawAnswer {
  status: number;
  headers: HeaderSource;
  body: string;
}

// undici's own request API (its keep-alive pool per origin, the same defaults as fetch), not
// fetch: fetch (undici under Node's WHATWG layer) builds web streams, Headers, Response and
// abort objects per call — a third of deliver's CPU in the bench profile — for an answer we
// read whole anyway. Like fetch with redirect 'manual', a 3xx is an answer, not followed: a
// write is never re-sent somewhere else without the operator saying so.
async function viaUndici(req: HttpRequest, signal: AbortSignal): Promise<RawAnswer> {
  const res = await request(req.url, { method: req.method as Dispatcher.HttpMethod, headers: req.headers, body: req.body, signal });
  return { status: res.statusCode, headers: res.headers as HeaderSource, body: await res.body.text() };
}

async function viaFetch(req: HttpRequest, signal: AbortSignal, fetchFn: typeof fetch): Promise<RawAnswer> {
  const res = await fetchFn(req.url, { method: req.method, headers: req.headers, body: req.body, signal });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/**
 * One HTTP request with a hard timeout, classified (classifyHttp): by status, and by whether
 * the request left us — a refused connection never reached the target (transient), a timeout
 * may have been applied there (ambiguous). Never throws. `fetchFn`: a caller's own client
 * (tests, proxies); by default undici's request API over a shared keep-alive pool.
 */
export async function sendHttp(req: HttpRequest, timeoutMs: number, fetchFn?: typeof fetch): Promise<HttpAnswer> {
  const started = performance.now();
  const abort = new AbortController();
  // the whole call, answer body included, is bounded: the deliverer sizes it to the lease it holds
  const timer = setTimeout(() => abort.abort(new TimeoutError(timeoutMs)), timeoutMs);
  try {
    const res = await (fetchFn && fetchFn !== globalThis.fetch ? viaFetch(req, abort.signal, fetchFn) : viaUndici(req, abort.signal));
    const rateLimit = parseRateLimitReset(res.headers);
    const known = rateLimit.remaining !== undefined || rateLimit.resetMs !== undefined ? rateLimit : undefined;
    const ok = res.status >= 200 && res.status < 300;
    if (ok) return { ok: true, failureClass: 'ok', status: res.status, detail: `${res.status}`, durationMs: elapsedMs(started), rateLimit: known, body: res.body };
    return { ok: false, failureClass: classifyHttp(res.status, true), status: res.status, retryAfterMs: parseRetryAfter(headerValue(res.headers, 'retry-after')),
      detail: `${res.status} ${res.body.slice(0, 200)}`, durationMs: elapsedMs(started), rateLimit: known };
  } catch (err) {
    const e = err as Error & { code?: string; cause?: { code?: string } };
    const timedOut = abort.signal.aborted || e.name === 'TimeoutError' || e.name === 'AbortError';
    const code = e.code ?? e.cause?.code;
    const notSent = !timedOut && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'].includes(code ?? '');
    return { ok: false, failureClass: classifyHttp(undefined, !notSent), detail: timedOut ? `no answer within ${timeoutMs} ms` : `${code ?? e.message}`,
      durationMs: elapsedMs(started) };
  } finally {
    clearTimeout(timer);
  }
}

class TimeoutError extends Error {
  override name = 'TimeoutError';
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

/** Reads an environment variable that must hold a URL; every problem named at start-up. */
export function urlFromEnv(env: NodeJS.ProcessEnv, name: string, missing: (what: string) => Error): string {
  const url = env[name];
  if (!url || !URL.canParse(url)) throw missing(`${name} to the target's URL`);
  return url.replace(/\/$/, '');
}

import { classifyHttp } from '@bus/errors';
import { parseRateLimitReset, parseRetryAfter } from '@bus/retry';
import { type CallResult, elapsedMs } from '../target.js';

export interface HttpRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/** The call's result and, for reads, the answer's body. */
export type HttpAnswer = CallResult & { body?: string };

/**
 * One HTTP request with a hard timeout, classified (classifyHttp): by status, and by whether
 * the request left us — a refused connection never reached the target (transient), a timeout
 * may have been applied there (ambiguous). Never throws.
 */
export async function sendHttp(req: HttpRequest, timeoutMs: number, fetchFn: typeof fetch = fetch): Promise<HttpAnswer> {
  const started = performance.now();
  try {
    const res = await fetchFn(req.url, { method: req.method, headers: req.headers, body: req.body, signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    const rateLimit = parseRateLimitReset(res.headers);
    const known = rateLimit.remaining !== undefined || rateLimit.resetMs !== undefined ? rateLimit : undefined;
    if (res.ok) return { ok: true, failureClass: 'ok', status: res.status, detail: `${res.status}`, durationMs: elapsedMs(started), rateLimit: known, body };
    return { ok: false, failureClass: classifyHttp(res.status, true), status: res.status, retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
      detail: `${res.status} ${body.slice(0, 200)}`, durationMs: elapsedMs(started), rateLimit: known };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    const notSent = !timedOut && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'].includes(e.cause?.code ?? '');
    return { ok: false, failureClass: classifyHttp(undefined, !notSent), detail: timedOut ? `no answer within ${timeoutMs} ms` : `${e.cause?.code ?? e.message}`,
      durationMs: elapsedMs(started) };
  }
}

/** Reads an environment variable that must hold a URL; every problem named at start-up. */
export function urlFromEnv(env: NodeJS.ProcessEnv, name: string, missing: (what: string) => Error): string {
  const url = env[name];
  if (!url || !URL.canParse(url)) throw missing(`${name} to the target's URL`);
  return url.replace(/\/$/, '');
}

import type { DeliveryCommand } from '@bus/connectors';
import { classifyHttp, type FailureClass } from '@bus/errors';
import { parseRetryAfter } from '@bus/retry';
import type { ResolvedDelivery } from './settings.js';

/** What one call to the target came to. */
export interface CallResult {
  ok: boolean;
  failureClass: FailureClass | 'ok';
  status?: number;
  retryAfterMs?: number;
  /** Short, log-safe: status and a little of the answer, never headers. */
  detail: string;
  durationMs: number;
}

/**
 * One HTTP call for one command: the route of its action, its JSON body, the idempotency
 * key (the same on every attempt), auth, and a hard timeout. The class is decided by
 * classifyHttp from the status and whether the request left us.
 */
export async function callTarget(d: ResolvedDelivery, cmd: DeliveryCommand, timeoutMs: number, fetchFn: typeof fetch = fetch, extraHeaders: Record<string, string> = {}): Promise<CallResult> {
  const route = d.settings.routes[cmd.action];
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  if (!route) return { ok: false, failureClass: 'permanent', detail: `the connector has no route for action "${cmd.action}"`, durationMs: 0 };
  const path = route.path.replaceAll('{type}', encodeURIComponent(cmd.target.type)).replaceAll('{id}', encodeURIComponent(cmd.target.id));
  try {
    const res = await fetchFn(`${d.baseUrl}${path}`, {
      method: route.method,
      headers: {
        'content-type': 'application/json', [d.settings.idempotencyHeader]: cmd.idempotencyKey,
        'x-correlation-id': cmd.correlationId, 'x-entity-version': String(cmd.version), ...d.authHeaders, ...extraHeaders,
      },
      body: route.method === 'DELETE' ? undefined : JSON.stringify({ key: cmd.target, version: cmd.version, fields: cmd.fields, sourceOwned: cmd.sourceOwned, eventId: cmd.event.id }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = (await res.text()).slice(0, 200);
    if (res.ok) return { ok: true, failureClass: 'ok', status: res.status, detail: `${res.status}`, durationMs: took() };
    return { ok: false, failureClass: classifyHttp(res.status, true), status: res.status, retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
      detail: `${res.status} ${text}`, durationMs: took() };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    // a refused or unresolvable connection never reached the target; a timeout may have been applied
    const notSent = !timedOut && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'].includes(e.cause?.code ?? '');
    return { ok: false, failureClass: classifyHttp(undefined, !notSent), detail: timedOut ? `no answer within ${timeoutMs} ms` : `${e.cause?.code ?? e.message}`, durationMs: took() };
  }
}

import { newCorrelationId } from '@bus/envelope';

const safe = /^[A-Za-z0-9._:=-]{1,200}$/;
const traceparent = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The correlation id of a request: `X-Correlation-Id` when it is a safe id, else the
 * trace id of a W3C `traceparent`, else a new one.
 */
export function correlationIdOf(headers: Record<string, string | string[] | undefined>): string {
  const given = first(headers['x-correlation-id'])?.trim();
  if (given && safe.test(given)) return given;
  const trace = traceparent.exec(first(headers.traceparent)?.trim() ?? '');
  if (trace?.[1] && !/^0+$/.test(trace[1])) return trace[1];
  return newCorrelationId();
}

import type { Bus } from '@bus/bus';
import { oauthFor, type ResolvedDelivery, TargetReadError, type TargetPage, type TargetRecord } from '@bus/delivery';
import type { Logger } from '@bus/observability';
import { createRateLimiter } from '@bus/ratelimit';

/**
 * Reads at one connector's target for reconcile: paced (default half the connector's own rate
 * limit, so live deliveries keep the other half), with the connector's OAuth2 token (shared with
 * deliver through KV; a refused token is renewed once), a transient failure (429, 5xx, timeout)
 * tried 5 times with backoff before it is thrown.
 */
export async function targetReader(o: { bus: Bus; delivery: ResolvedDelivery; log: Logger; readRatePerSec?: number; signal?: AbortSignal }) {
  const { delivery } = o;
  const target = delivery.target;
  const readRate = o.readRatePerSec ?? (delivery.settings.rateLimit ? delivery.settings.rateLimit.ratePerSec / 2 : undefined);
  const limiter = readRate ? createRateLimiter({ ratePerSec: readRate, burst: Math.max(1, Math.ceil(readRate)) }) : undefined;
  const timeoutMs = delivery.policyFor('').attemptTimeoutMs;
  const tokens = await oauthFor(o.bus, delivery);
  let rejected: string | undefined;

  const read = async <T>(fn: (c: { timeoutMs: number; headers: Record<string, string> }) => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      await limiter?.take(o.signal);
      const token = tokens && (rejected ? await tokens.renew(rejected) : await tokens.token());
      try {
        return await fn({ timeoutMs, headers: token ? { authorization: `Bearer ${token}` } : {} });
      } catch (err) {
        // a refused token is renewed once (another process may have renewed it already)
        if (err instanceof TargetReadError && err.status === 401 && token && rejected !== token) {
          rejected = token;
          continue;
        }
        if (!(err instanceof TargetReadError) || err.failureClass !== 'transient' || attempt >= 5) throw err;
        limiter?.penalize();
        o.log.warn({ err: err.message, attempt }, 'a read at the target failed; trying again');
        await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      }
    }
  };
  return {
    /** The records of one type with these ids that the target holds, by id (one batched read where it can). */
    async lookupAll(type: string, ids: string[]): Promise<Map<string, TargetRecord>> {
      const found = target.lookupMany
        ? await read((c) => target.lookupMany!(type, ids, c))
        : (await Promise.all(ids.map((id) => read((c) => target.lookup!({ type, id }, c))))).filter((r): r is TargetRecord => r !== undefined);
      return new Map(found.map((r) => [r.key.id, r]));
    },
    list: target.list ? (type: string, page: { after?: string; limit: number }): Promise<TargetPage> => read((c) => target.list!(type, page, c)) : undefined,
  };
}
export type TargetReader = Awaited<ReturnType<typeof targetReader>>;

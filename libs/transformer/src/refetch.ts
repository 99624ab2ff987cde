import type { Envelope } from '@bus/envelope';
import { type AnySource, createSourceClient, type Refetched, type SourceClient } from '@bus/intake';

export interface RefetcherOptions {
  sources: readonly AnySource[];
  /** Where the sources' API settings (base URL, key) are read from. */
  env: NodeJS.ProcessEnv;
  fetchFn?: typeof fetch;
  /** One fetch per event serves every connector that wants it within this long. Default 10 000 ms. */
  shareMs?: number;
}

/**
 * Reads the current record of an event's entity from its source (the source's `refetch`, through its one client),
 * once per event for all connectors: each connector's consumer handles the same event, and the source's rate limit
 * is spent once.
 */
export function createRefetcher(o: RefetcherOptions) {
  const byName = new Map(o.sources.map((s) => [s.name, s]));
  const clients = new Map<string, SourceClient>();
  const recent = new Map<string, { at: number; result: Promise<Refetched> }>();
  const shareMs = o.shareMs ?? 10_000;

  const clientOf = (s: AnySource) => {
    let c = clients.get(s.name);
    if (!c) {
      c = createSourceClient(s.name, s.api!, o.env, o.fetchFn);
      clients.set(s.name, c);
    }
    return c;
  };

  return {
    /** The event's source, when it can refetch. */
    sourceOf: (event: Pick<Envelope, 'source'>) => {
      const s = byName.get(event.source);
      return s?.refetch && s.api ? s : undefined;
    },
    /** The entity's current record (or that it is gone); throws the client's SourceApiError. */
    async fetch(source: AnySource, event: Envelope): Promise<Refetched> {
      const now = Date.now();
      for (const [k, v] of recent) if (now - v.at > shareMs) recent.delete(k);
      const hit = recent.get(event.id);
      if (hit) return hit.result;
      const result = source.refetch!.fetch(event.entity, { event, client: clientOf(source), signal: AbortSignal.timeout(60_000) });
      recent.set(event.id, { at: now, result });
      result.catch(() => recent.delete(event.id)); // a failure is not shared: the retry fetches again
      return result;
    },
  };
}
export type Refetcher = ReturnType<typeof createRefetcher>;

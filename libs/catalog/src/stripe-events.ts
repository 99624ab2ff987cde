// The demo stripe source's listing: Stripe's events API finds webhooks that never reached ingest.
import { BusError, classifyHttp } from '@bus/errors';
import type { ChangesContext, ChangesPage, SourceChanges } from '@bus/intake';

interface StripeList {
  data: { id: string }[];
  has_more: boolean;
}

const BACKFILL = 'backfill:';

/**
 * `GET {STRIPE_API_BASE}/v1/events` (newest first) as a source listing. An event there is the
 * webhook's body, so it gets the webhook's event id (`stripe:<evt id>`) and dedups with it.
 *
 * Checkpoint: the newest event id stored; a run lists what is newer with
 * `ending_before=<it>` (Stripe answers the `limit` events right after it, newest first, and
 * `has_more` while even newer ones exist). The first run has no such id: it backfills
 * `STRIPE_EVENTS_LOOKBACK_SEC` (default 3 days; Stripe keeps 30) backwards with
 * `starting_after`, its checkpoint `backfill:<newest>:<oldest so far>`, then goes on
 * forward from the newest.
 */
export function stripeEventsListing(): SourceChanges {
  return {
    everySec: 300,
    pageSize: 100, // Stripe's largest page
    requiredEnv: ['STRIPE_API_KEY'],
    async list(checkpoint, ctx): Promise<ChangesPage> {
      if (checkpoint && !checkpoint.startsWith(BACKFILL)) {
        const page = await listEvents(ctx, { ending_before: checkpoint });
        const items = page.data.toReversed(); // oldest first
        return { items: items.map((e) => ({ payload: e })), checkpoint: page.data[0]?.id ?? checkpoint, more: page.has_more && page.data.length > 0 };
      }
      const [newest, oldest] = checkpoint ? checkpoint.slice(BACKFILL.length).split(':') : [];
      const lookbackSec = Number(ctx.env.STRIPE_EVENTS_LOOKBACK_SEC ?? 3 * 86_400);
      const since = Math.floor(Date.now() / 1000) - (Number.isFinite(lookbackSec) && lookbackSec > 0 ? lookbackSec : 3 * 86_400);
      const page = await listEvents(ctx, { 'created[gte]': String(since), ...(oldest ? { starting_after: oldest } : {}) });
      const top = newest ?? page.data[0]?.id;
      const last = page.data.at(-1)?.id;
      const items = page.data.map((e) => ({ payload: e }));
      // backfill done (or nothing in the window yet): from now on, forward from the newest
      if (!page.has_more || !last || !top) return { items, checkpoint: top ?? '', more: false };
      return { items, checkpoint: `${BACKFILL}${top}:${last}`, more: true };
    },
  };
}

async function listEvents(ctx: ChangesContext, params: Record<string, string>): Promise<StripeList> {
  const base = (ctx.env.STRIPE_API_BASE || 'https://api.stripe.com').replace(/\/+$/, '');
  if (ctx.client) {
    // the source's one client: auth, pace, retries and failure classes shared with refetch
    const r = await ctx.client.get('/v1/events', { query: { limit: String(ctx.limit), ...params }, signal: ctx.signal });
    const body = r.body as StripeList;
    if (r.status !== 200 || !Array.isArray(body?.data)) throw new BusError('STRIPE_EVENTS_MALFORMED', 'permanent', `Stripe's events API at ${base} answered ${r.status} without a data list; is STRIPE_API_BASE right?`);
    return body;
  }
  const url = `${base}/v1/events?${new URLSearchParams({ limit: String(ctx.limit), ...params })}`;
  let res: Response;
  try {
    res = await ctx.fetch(url, { headers: { authorization: `Bearer ${ctx.env.STRIPE_API_KEY}` }, signal: ctx.signal });
  } catch (err) {
    throw new BusError('STRIPE_EVENTS_UNREACHABLE', 'transient', `Stripe's events API at ${base} did not answer (${(err as Error).message}); the next poll tries again`, { cause: err });
  }
  if (!res.ok) {
    const detail = (await res.text().catch(() => '')).slice(0, 300);
    throw new BusError(`STRIPE_EVENTS_${res.status}`, classifyHttp(res.status, true),
      `Stripe's events API answered ${res.status} (${detail}); ${res.status === 401 ? 'check STRIPE_API_KEY (a restricted key needs read access to events)' : 'the next poll tries again'}`);
  }
  const body = (await res.json()) as StripeList;
  if (!Array.isArray(body?.data)) throw new BusError('STRIPE_EVENTS_MALFORMED', 'permanent', `Stripe's events API at ${base} answered without a data list; is STRIPE_API_BASE right?`);
  return body;
}

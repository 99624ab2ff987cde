import { BusError } from '@bus/errors';
import { DateTime, Duration } from 'luxon';

/** `--since 2h` (or a console filter's age) or an ISO-8601 time → epoch ms. */
export function parseSince(since: string, now: DateTime = DateTime.utc()): number {
  const rel = /^(\d+)\s*(s|m|h|d|w)$/.exec(since.trim());
  if (rel) {
    const unit = { s: 'seconds', m: 'minutes', h: 'hours', d: 'days', w: 'weeks' }[rel[2] as 's'];
    return now.minus(Duration.fromObject({ [unit]: Number(rel[1]) })).toMillis();
  }
  const at = DateTime.fromISO(since, { zone: 'utc' });
  if (!at.isValid) throw new BusError('CLI_USAGE', 'business', `--since "${since}" is neither a duration like 2h / 30m / 3d nor an ISO time`);
  return at.toMillis();
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY = '(?:mon|tue|wed|thu|fri|sat|sun)';
const LONG_DAY = '(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)';
// RFC 9110 §5.6.7: IMF-fixdate, and the two obsolete forms a recipient must still accept
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{1,2}) ([a-z]{3}) (\\d{4}) (\\d{2}):(\\d{2}):(\\d{2}) gmt$`, 'i');
const RFC850 = new RegExp(`^${LONG_DAY}, (\\d{2})-([a-z]{3})-(\\d{2}) (\\d{2}):(\\d{2}):(\\d{2}) gmt$`, 'i');
const ASCTIME = new RegExp(`^${DAY} ([a-z]{3}) ([ \\d]?\\d) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})$`, 'i');

/**
 * An HTTP-date (RFC 9110: IMF-fixdate, RFC 850 or asctime; always UTC) as epoch ms, or
 * undefined when it is not one. Strict on purpose: Date.parse takes almost anything, and
 * reads asctime as local time.
 */
export function parseHttpDate(value: string, nowMs: number): number | undefined {
  const parts = dateParts(value, nowMs);
  if (!parts) return undefined;
  const [year, mon, day, h, min, s] = parts;
  const month = MONTHS.indexOf(mon.toLowerCase());
  if (month < 0 || h > 23 || min > 59 || s > 60) return undefined;
  const at = Date.UTC(year, month, day, h, min, Math.min(s, 59));
  const check = new Date(at);
  return check.getUTCMonth() === month && check.getUTCDate() === day ? at : undefined; // 31 Feb is not a date
}

/** [year, month name, day, hours, minutes, seconds] of any of the three forms. */
function dateParts(value: string, nowMs: number): [number, string, number, number, number, number] | undefined {
  const imf = IMF_FIXDATE.exec(value);
  if (imf) return [Number(imf[3]), imf[2]!, Number(imf[1]), Number(imf[4]), Number(imf[5]), Number(imf[6])];
  const asc = ASCTIME.exec(value);
  if (asc) return [Number(asc[6]), asc[1]!, Number(asc[2]!.trim()), Number(asc[3]), Number(asc[4]), Number(asc[5])];
  const rfc850 = RFC850.exec(value);
  if (!rfc850) return undefined;
  // a two-digit year more than 50 years ahead is the most recent past year with those digits
  const nowYear = new Date(nowMs).getUTCFullYear();
  let year = Math.floor(nowYear / 100) * 100 + Number(rfc850[3]);
  if (year > nowYear + 50) year -= 100;
  return [year, rfc850[2]!, Number(rfc850[1]), Number(rfc850[4]), Number(rfc850[5]), Number(rfc850[6])];
}

/**
 * A Retry-After header as ms from now: delta-seconds (`120`) or an HTTP-date (a date in
 * the past gives 0). Anything else — empty, negative, fractional, a list, garbage —
 * gives undefined: a bad header must not stall deliveries; the retry policy applies.
 * No upper bound here; nextDelay caps what it honours (MAX_RETRY_AFTER_MS).
 * @param value the header as received (Headers.get gives null when absent).
 * @param nowMs epoch ms the header is read against. Default Date.now().
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) {
    const ms = Number(v) * 1000;
    return Number.isFinite(ms) ? ms : undefined;
  }
  const at = parseHttpDate(v, nowMs);
  return at === undefined ? undefined : Math.max(0, at - nowMs);
}

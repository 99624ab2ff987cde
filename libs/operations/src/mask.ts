import { createHash } from 'node:crypto';
import type { DeadLetter } from '@bus/bus';
import { decode } from '@bus/envelope';
import { SECRET_HEADERS } from '@bus/observability';

/** Keys whose values are credentials or signatures: never shown, not even hashed. */
const SECRET_KEY = /(authorization|password|passwd|secret|token|signature|api[-_]?key|cookie|creds|nkey)/i;
const SECRET_HEADER_NAMES = new Set<string>(SECRET_HEADERS);

/** A personal value as reconcile reports show it: a short hash that tells equal values apart without showing either. */
export function maskValue(v: unknown): string {
  return `redacted:${createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 8)}`;
}

/**
 * A copy of `value` with personal fields (by name, at any depth) hashed as in reconcile reports
 * and secrets (tokens, passwords, signatures) removed.
 */
export function maskFields(value: unknown, personal: ReadonlySet<string>, depth = 0): unknown {
  if (depth > 20 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => maskFields(v, personal, depth + 1));
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (SECRET_KEY.test(k)) out[k] = '[secret: not shown]';
    else if (personal.has(k)) out[k] = v === undefined ? undefined : maskValue(v);
    else out[k] = maskFields(v, personal, depth + 1);
  }
  return out;
}

/** The original message's body: JSON (ingest quarantine), else msgpack (events, commands), else its size. */
function bodyOf(data: Uint8Array): unknown {
  const bytes = Buffer.from(data);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    try {
      return decode(data);
    } catch {
      return `${bytes.length} bytes (binary)`;
    }
  }
}

/** A DLQ entry for a person to read: payload decoded with personal fields masked, no signature or credential header. */
export interface ShownDeadLetter extends Omit<DeadLetter, 'original'> {
  seq: number;
  original: Omit<DeadLetter['original'], 'data'> & { data: unknown };
}

export function showDeadLetter(seq: number, entry: DeadLetter, personal: ReadonlySet<string>): ShownDeadLetter {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(entry.original.headers)) {
    headers[k] = SECRET_HEADER_NAMES.has(k.toLowerCase()) || SECRET_KEY.test(k) ? '[secret: not shown]' : v;
  }
  return {
    ...entry, seq, details: maskFields(entry.details, personal) as DeadLetter['details'],
    original: { ...entry.original, headers, data: maskFields(bodyOf(entry.original.data), personal) },
  };
}

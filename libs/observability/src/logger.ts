import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * Request headers that carry a credential or a signature: censored wherever a `headers`
 * object is logged (the bus logs an allowlist of request fields, never whole headers; this
 * is the net under that rule).
 */
export const SECRET_HEADERS = [
  'authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'api-key', 'x-auth-token',
  'stripe-signature', 'x-hub-signature', 'x-hub-signature-256', 'webhook-signature', 'svix-signature', 'x-signature',
] as const;

/**
 * Paths pino censors on every line: credentials, tokens, signatures, secret headers. The
 * configured personal fields (LOG_REDACT_FIELDS, personalFieldPaths) and a caller's `redact`
 * are added to these.
 */
export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers.cookie',
  '*.headers.cookie',
  '*.password',
  'password',
  '*.token',
  'token',
  '*.accessToken',
  '*.refreshToken',
  '*.access_token',
  '*.refresh_token',
  '*.clientSecret',
  '*.client_secret',
  '*.secret',
  'secret',
  '*.secrets',
  '*.signature',
  'signature',
  '*.apiKey',
  '*.creds',
  '*.nkeySeed',
  '*.cookie',
  ...SECRET_HEADERS.flatMap((h) => [`headers["${h}"]`, `*.headers["${h}"]`, `*.*.headers["${h}"]`, `["${h}"]`, `*["${h}"]`]),
] as const;

/**
 * The personal fields censored when LOG_REDACT_FIELDS is unset. Set it (comma-separated
 * field names, e.g. `email,phone,name,iban`) to the personal fields of your payloads.
 */
export const DEFAULT_PERSONAL_FIELDS = ['email', 'phone'] as const;

/** Pino paths for a field name at any of the first three levels (`email`, `x.email`, `x.y.email`). */
export function personalFieldPaths(fields: readonly string[]): string[] {
  return fields.filter((f) => /^[A-Za-z_$][\w$]*$/.test(f)).flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);
}

/** LOG_REDACT_FIELDS → field names (unset: the defaults; empty: none). */
export function personalFields(env: NodeJS.ProcessEnv = process.env): string[] {
  const v = env.LOG_REDACT_FIELDS;
  return v === undefined ? [...DEFAULT_PERSONAL_FIELDS] : v.split(',').map((f) => f.trim()).filter(Boolean);
}

export interface LoggerOptions {
  /** Stamped on every line as `service`. Required. */
  service: string;
  /** Default: LOG_LEVEL from the environment, else 'info'. */
  level?: string;
  /** Extra paths to censor (e.g. `*.payload.customer`), on top of REDACT_PATHS and the personal fields. */
  redact?: string[];
  /** Personal field names censored at any of the first three levels. Default: LOG_REDACT_FIELDS, else `email,phone`. */
  personalFields?: string[];
  /** Where lines go; default stdout. Tests pass a stream to read them back. */
  destination?: DestinationStream;
}

/** The one root logger of a process: JSON lines, ISO times, secrets censored. */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      name: opts.service,
      base: { service: opts.service, pid: process.pid },
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACT_PATHS, ...personalFieldPaths(opts.personalFields ?? personalFields()), ...(opts.redact ?? [])], censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    opts.destination,
  );
}

/** The IDs that bind a log line to one business action. */
export interface LogContext {
  correlationId?: string;
  eventId?: string;
  connector?: string;
  [key: string]: unknown;
}

/** A child logger for one message or request: every line carries its correlation id. */
export function logFor(log: Logger, ctx: LogContext): Logger {
  return log.child(ctx);
}

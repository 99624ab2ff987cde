import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino censors on every line: credentials, tokens, signatures. Services add their
 * configured personal fields through `redact`.
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
] as const;

export interface LoggerOptions {
  /** Stamped on every line as `service`. Required. */
  service: string;
  /** Default: LOG_LEVEL from the environment, else 'info'. */
  level?: string;
  /** Extra paths to censor (personal fields, e.g. `*.email`). */
  redact?: string[];
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
      redact: { paths: [...REDACT_PATHS, ...(opts.redact ?? [])], censor: '[redacted]' },
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

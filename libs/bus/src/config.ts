import { ConfigError } from '@bus/errors';
import { z } from 'zod';

const optional = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

/**
 * How a process reaches NATS and which slice of it the bus uses. Read from the
 * environment once at start-up (README → Configuration).
 */
export const BusEnv = z
  .object({
    NATS_URL: z.string().default('nats://127.0.0.1:4222'),
    NATS_USER: optional,
    NATS_PASSWORD: optional,
    NATS_TOKEN: optional,
    NATS_NKEY_SEED: optional,
    NATS_CREDS_FILE: optional,
    NATS_TLS_CA_FILE: optional,
    NATS_TLS_CERT_FILE: optional,
    NATS_TLS_KEY_FILE: optional,
    BUS_PREFIX: z.string().regex(/^([A-Za-z][A-Za-z0-9]{0,30})?$/, 'letters and digits, starting with a letter').default(''),
    BUS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
    BUS_PUBLISH_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5_000),
    /** How often a service reads the DLQ's per-connector size and oldest age into metrics; 0 = never. */
    BUS_DLQ_STATS_INTERVAL_MS: z.coerce.number().int().min(0).max(3_600_000).default(15_000),
    /** How long an audit record waits to share its message with others of its correlation; a process that dies loses at most this much. 0 = end of the current turn. */
    BUS_AUDIT_FLUSH_MS: z.coerce.number().int().min(0).max(1_000).default(0),
  })
  .superRefine((env, ctx) => {
    if (!!env.NATS_USER !== !!env.NATS_PASSWORD) {
      ctx.addIssue({ code: 'custom', path: ['NATS_PASSWORD'], message: 'NATS_USER and NATS_PASSWORD go together: set both or neither' });
    }
    if (!!env.NATS_TLS_CERT_FILE !== !!env.NATS_TLS_KEY_FILE) {
      ctx.addIssue({ code: 'custom', path: ['NATS_TLS_KEY_FILE'], message: 'a client certificate needs its key: set NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE together' });
    }
    const auth = [env.NATS_USER, env.NATS_TOKEN, env.NATS_NKEY_SEED, env.NATS_CREDS_FILE].filter(Boolean).length;
    if (auth > 1) {
      ctx.addIssue({ code: 'custom', path: ['NATS_TOKEN'], message: 'choose one NATS auth method: user/password, token, nkey seed or creds file' });
    }
  });
export type BusConfig = Readonly<z.infer<typeof BusEnv>>;

/**
 * Parses and freezes configuration. On failure it lists every problem; nothing starts.
 * Services extend it with `schema.and(BusEnv)`-style composition via parseEnv.
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): Readonly<z.infer<S>> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`configuration is invalid; nothing was started:\n${lines.join('\n')}`);
  }
  return Object.freeze(parsed.data) as Readonly<z.infer<S>>;
}

/** The bus's own settings from the environment. */
export function loadBusConfig(env: NodeJS.ProcessEnv = process.env): BusConfig {
  return parseEnv(BusEnv, env);
}

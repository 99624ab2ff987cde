// console: wiring only — the operator console (server-rendered pages over @bus/operations) and its live activity watch.
import { runService } from '@bus/bus';
import { personalFields } from '@bus/observability';
import { watchActivity } from '@bus/operations';
import { z } from 'zod';
import { createConsole } from './app.js';
import { parseTokens } from './auth.js';

runService({
  name: 'console',
  env: z.object({
    CONSOLE_PORT: z.coerce.number().int().min(0).max(65_535).default(8085),
    /** Loopback by default: put it behind your own TLS proxy to reach it from elsewhere. */
    CONSOLE_HOST: z.string().default('127.0.0.1'),
    /** `name:token` pairs, comma-separated (several at once to rotate); the name is recorded with each action. */
    CONSOLE_TOKENS: z.string().min(1, 'required: name:token pairs (openssl rand -hex 24 makes a token); the console never runs open'),
    CONSOLE_OPS_PORT: z.coerce.number().int().min(0).max(65_535).default(8084),
    CONSOLE_OPS_HOST: z.string().default('127.0.0.1'),
    /** Fields masked in payloads on the dead-letter pages (default: LOG_REDACT_FIELDS, else email,phone). */
    CONSOLE_PERSONAL_FIELDS: z.string().optional(),
  }),
  ops: (c) => ({ port: c.CONSOLE_OPS_PORT, host: c.CONSOLE_OPS_HOST }),
  stream: (bus) => bus.names.streams.audit,
  async start({ bus, config, log, metrics }) {
    const tokens = parseTokens(config.CONSOLE_TOKENS);
    const activity = await watchActivity({ bus, log });
    const fields = config.CONSOLE_PERSONAL_FIELDS?.split(',').map((f) => f.trim()).filter(Boolean) ?? [...personalFields(), 'name'];
    const app = createConsole({ bus, log, tokens, activity, personalFields: fields, registry: metrics.registry });
    await app.listen({ port: config.CONSOLE_PORT, host: config.CONSOLE_HOST });
    const url = `http://${config.CONSOLE_HOST}:${(app.server.address() as { port: number }).port}`;
    log.info({ url, operators: tokens.map((t) => t.name) }, 'console listening');
    return {
      endpoints: { url },
      async stop() {
        await app.close();
        await activity.stop();
      },
    };
  },
});

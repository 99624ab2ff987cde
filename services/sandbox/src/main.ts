// sandbox: demo targets (crm, warehouse) so `npm start` shows a delivery end to end.
import { onShutdown, parseEnv } from '@bus/bus';
import { createLogger } from '@bus/observability';
import { z } from 'zod';
import { createSandbox } from './sandbox.js';

const Env = z.object({
  SANDBOX_PORT: z.coerce.number().int().min(0).max(65_535).default(8090),
  SANDBOX_HOST: z.string().default('127.0.0.1'),
  CRM_API_KEY: z.string().min(1, 'required: the API key the demo CRM accepts'),
  /** When both are set, the demo warehouse wants OAuth2 bearer tokens from /oauth/token (client credentials). */
  WAREHOUSE_CLIENT_ID: z.string().optional(),
  WAREHOUSE_CLIENT_SECRET: z.string().optional(),
  /** When set, a fake of Stripe's customers and events API under /stripe accepts this key (with one demo customer). */
  STRIPE_API_KEY: z.string().optional(),
});
const log = createLogger({ service: 'sandbox' });

async function main() {
  const config = parseEnv(Env);
  const app = createSandbox({ crmApiKey: config.CRM_API_KEY,
    warehouseClient: config.WAREHOUSE_CLIENT_ID && config.WAREHOUSE_CLIENT_SECRET ? { id: config.WAREHOUSE_CLIENT_ID, secret: config.WAREHOUSE_CLIENT_SECRET } : undefined,
    ...(config.STRIPE_API_KEY ? { stripe: { apiKey: config.STRIPE_API_KEY, seed: true } } : {}) });
  await app.listen({ port: config.SANDBOX_PORT, host: config.SANDBOX_HOST });
  const url = `http://${config.SANDBOX_HOST}:${(app.server.address() as { port: number }).port}`;
  log.info({ url }, 'sandbox targets listening');
  process.send?.({ type: 'ready', service: 'sandbox', endpoints: { crm: `${url}/crm`, warehouse: `${url}/warehouse`, oauth: `${url}/oauth/token`, ...(config.STRIPE_API_KEY ? { stripe: `${url}/stripe` } : {}) } });
  onShutdown(log, () => app.close());
}

main().catch((err: Error) => {
  log.fatal(err.message);
  process.exit(1);
});

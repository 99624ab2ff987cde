// Which catalog a process runs: the demo one, or the module named by BUS_CATALOG.
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkConnectors, type Connector, defineConnector, type SchemaRegistry } from '@bus/connectors';
import { ConfigError } from '@bus/errors';
import type { AnySource } from '@bus/intake';
import { demoConnectors } from './connectors.js';
import { demoSchemas } from './schemas.js';
import { demoSources } from './sources.js';

/** The connectors, sources and event schemas one deployment runs. */
export interface Catalog {
  connectors: Connector[];
  sources: AnySource[];
  schemas: SchemaRegistry;
  /** `demo`, or the path BUS_CATALOG named. */
  from: string;
}

const isRegistry = (v: unknown): v is SchemaRegistry =>
  !!v && typeof (v as SchemaRegistry).validate === 'function' && typeof (v as SchemaRegistry).has === 'function';

/**
 * The catalog this process runs. With `BUS_CATALOG` unset: the demo (crm, warehouse; the
 * stripe, github and standard sources). With `BUS_CATALOG=<path to an ES module>` (relative
 * to the working directory, or absolute): that module's exports `connectors` (required, an
 * array of defineConnector results), `schemas` (required, a SchemaRegistry) and `sources`
 * (optional, default none) — the same shapes as demoConnectors, demoSchemas, demoSources.
 * Checked like the demo: unique names, every subscription has a schema. Every service and
 * the CLI must see the same BUS_CATALOG, or transform makes commands deliver cannot handle.
 *
 * @throws ConfigError naming BUS_CATALOG and what is wrong with the module.
 */
export async function loadCatalog(env: NodeJS.ProcessEnv = process.env): Promise<Catalog> {
  const path = env.BUS_CATALOG?.trim();
  if (!path) return { connectors: demoConnectors, sources: demoSources, schemas: demoSchemas, from: 'demo' };
  const file = isAbsolute(path) ? path : resolve(process.cwd(), path);
  const where = `BUS_CATALOG=${path}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${where}: cannot import ${file} (${(err as Error).message}). Point it at a built ES module (.js), or unset it for the demo catalog`, { cause: err });
  }
  const problems: string[] = [];
  if (!Array.isArray(mod.connectors) || mod.connectors.length === 0) problems.push('export `connectors`: a non-empty array of defineConnector(...) results');
  if (!isRegistry(mod.schemas)) problems.push('export `schemas`: a SchemaRegistry with every subscribed event type');
  if (mod.sources !== undefined && !Array.isArray(mod.sources)) problems.push('export `sources`, when present: an array of defineSource(...) results');
  if (problems.length) throw new ConfigError(`${where}: the module must ${problems.join('; ')}`);
  const schemas = mod.schemas as SchemaRegistry;
  // the same checks the demo catalog gets at import: names unique, every subscription has a schema
  const connectors = checkConnectors((mod.connectors as Connector[]).map((c) => defineConnector(c, schemas)));
  return { connectors, sources: (mod.sources as AnySource[] | undefined) ?? [], schemas, from: file };
}

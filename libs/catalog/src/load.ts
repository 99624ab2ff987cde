// Which catalog a process runs: the demo one, or the module named by BUS_CATALOG.
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
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
  /** `demo`, or the absolute path of the module loaded. */
  from: string;
  /** Why this one: BUS_CATALOG, a bus.config file in the working directory, or neither (the demo). */
  via: 'BUS_CATALOG' | 'bus.config' | 'demo';
}

/** The file names looked for in the working directory when BUS_CATALOG is unset. */
export const CONFIG_FILES = ['bus.config.js', 'bus.config.mjs'] as const;

/** One line for a start-up log: which catalog runs and from where. */
export function describeCatalog(c: Catalog): string {
  const what = `${c.connectors.length} connector(s) ${c.connectors.map((x) => x.name).join(', ')}; ${c.sources.length} source(s)${c.sources.length ? ` ${c.sources.map((s) => s.name).join(', ')}` : ''}`;
  return c.via === 'demo' ? `demo catalog (${what})` : `catalog ${c.from} from ${c.via} (${what})`;
}

const isRegistry = (v: unknown): v is SchemaRegistry =>
  !!v && typeof (v as SchemaRegistry).validate === 'function' && typeof (v as SchemaRegistry).has === 'function';

/**
 * The catalog this process runs. `BUS_CATALOG` wins; else a `bus.config.js` or `bus.config.mjs`
 * in the working directory `cwd` (both there: a ConfigError); else the demo (crm, warehouse; the
 * stripe, github and standard sources). With `BUS_CATALOG=<path to an ES module>` (relative
 * to the working directory, or absolute): that module's exports `connectors` (required, an
 * array of defineConnector results), `schemas` (required, a SchemaRegistry) and `sources`
 * (optional, default none) — the same shapes as demoConnectors, demoSchemas, demoSources.
 * Checked like the demo: unique names, every subscription has a schema. Every service and
 * the CLI must run the same catalog (same BUS_CATALOG, or the same working directory), or
 * transform makes commands deliver cannot handle.
 *
 * @throws ConfigError naming BUS_CATALOG and what is wrong with the module.
 */
export async function loadCatalog(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<Catalog> {
  const named = env.BUS_CATALOG?.trim();
  let path: string;
  let via: Catalog['via'];
  if (named) {
    path = named;
    via = 'BUS_CATALOG';
  } else {
    const found = CONFIG_FILES.filter((f) => existsSync(join(cwd, f)));
    if (found.length > 1) throw new ConfigError(`${found.join(' and ')} are both in ${cwd}: keep one (or set BUS_CATALOG to choose)`);
    if (found.length === 0) return { connectors: demoConnectors, sources: demoSources, schemas: demoSchemas, from: 'demo', via: 'demo' };
    path = join(cwd, found[0]!);
    via = 'bus.config';
  }
  const file = isAbsolute(path) ? path : resolve(cwd, path);
  const where = via === 'BUS_CATALOG' ? `BUS_CATALOG=${path}` : path;
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
  return { connectors, sources: (mod.sources as AnySource[] | undefined) ?? [], schemas, from: file, via };
}

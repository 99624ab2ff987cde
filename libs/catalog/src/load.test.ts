import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { demoConnectors } from './connectors.js';
import { loadCatalog } from './load.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));

describe('loadCatalog', () => {
  it('BUS_CATALOG unset → the demo catalog', async () => {
    const c = await loadCatalog({});
    assert.equal(c.from, 'demo');
    assert.equal(c.connectors, demoConnectors);
  });

  it('BUS_CATALOG names a module → its connectors and schemas, no sources when it exports none', async () => {
    const c = await loadCatalog({ BUS_CATALOG: fixture('one-connector') });
    assert.deepEqual(c.connectors.map((x) => x.name), ['helpdesk']);
    assert.equal(c.schemas.has('ticket.opened', 1), true);
    assert.deepEqual(c.sources, []);
  });

  it('a module without schemas, or no module at all → a ConfigError naming BUS_CATALOG and what to fix', async () => {
    await assert.rejects(loadCatalog({ BUS_CATALOG: fixture('no-schemas') }), /\[CONFIG_INVALID\] BUS_CATALOG=.*no-schemas\.js: the module must export `schemas`/);
    await assert.rejects(loadCatalog({ BUS_CATALOG: '/nowhere/catalog.js' }), /BUS_CATALOG=\/nowhere\/catalog\.js: cannot import/);
  });
});

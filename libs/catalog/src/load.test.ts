import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { demoConnectors } from './connectors.js';
import { describeCatalog, loadCatalog } from './load.js';

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

  it('no BUS_CATALOG: a bus.config.js / bus.config.mjs in the working directory is loaded; BUS_CATALOG wins over it; both files → ConfigError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bus-config-'));
    try {
      assert.equal((await loadCatalog({}, dir)).via, 'demo', 'an empty directory: the demo');
      writeFileSync(join(dir, 'bus.config.mjs'), `export * from ${JSON.stringify(fixture('one-connector'))};\n`);
      const found = await loadCatalog({}, dir);
      assert.equal(found.via, 'bus.config');
      assert.equal(found.from, join(dir, 'bus.config.mjs'));
      assert.deepEqual(found.connectors.map((x) => x.name), ['helpdesk']);
      assert.match(describeCatalog(found), /^catalog .*bus\.config\.mjs from bus\.config \(1 connector\(s\) helpdesk; 0 source\(s\)\)$/);
      const named = await loadCatalog({ BUS_CATALOG: fixture('no-schemas') }, dir).catch((e: Error) => e);
      assert.match(String(named), /BUS_CATALOG=.*no-schemas/, 'BUS_CATALOG is the one loaded, not bus.config');
      assert.match(describeCatalog(await loadCatalog({}, '/')), /^demo catalog \(2 connector\(s\) crm, warehouse; 3 source\(s\) stripe, github, standard\)$/);
      writeFileSync(join(dir, 'bus.config.js'), 'export {};\n');
      await assert.rejects(loadCatalog({}, dir), /\[CONFIG_INVALID\] bus\.config\.js and bus\.config\.mjs are both in .*: keep one/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

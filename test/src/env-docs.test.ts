// Every environment variable a process reads is in the README: grep, not a list kept by hand.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const root = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return ['node_modules', 'dist', 'fixtures'].includes(f) ? [] : sources(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('.d.ts') && !p.endsWith('test-support.ts') ? [p] : [];
  });
}

// process.env.X, process.env['X'], env.X (a parsed or passed environment), X: z.… (a zod env schema),
// …Env: 'X' (a connector's or source's variable)
const READ =
  /process\.env\.([A-Z][A-Z0-9_]+)|process\.env\[['"]([A-Z][A-Z0-9_]+)['"]\]|\benv\.([A-Z][A-Z0-9_]+)|^\s*([A-Z][A-Z0-9]*_[A-Z0-9_]+): z\.|Env: ?['"]([A-Z][A-Z0-9_]+)['"]/gm;

export function variablesRead(dirs: string[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of dirs.flatMap((d) => sources(join(root, d)))) {
    for (const m of readFileSync(file, 'utf8').matchAll(READ)) {
      const name = m.slice(1).find(Boolean)!;
      if (!found.has(name)) found.set(name, file.slice(root.length));
    }
  }
  return found;
}

describe('environment variables', () => {
  it('every variable read in libs/, services/ and examples/ is documented in the README', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const vars = variablesRead(['libs', 'services', 'examples']);
    assert.ok(vars.size > 60, `found only ${vars.size}: the pattern is broken`);
    for (const known of ['NATS_URL', 'INGEST_PORT', 'CRM_API_KEY', 'BUS_CATALOG', 'HELPDESK_WEBHOOK_SECRET', 'TRACKER_PORT'])
      assert.ok(vars.has(known), `${known} not found`);
    const missing = [...vars].filter(([name]) => !readme.includes(`\`${name}\``) && !readme.includes(`\`${name}=`)).map(([n, f]) => `${n} (${f})`);
    assert.deepEqual(missing, [], 'read but not in README → Configuration');
  });
});

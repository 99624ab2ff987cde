// Every error code the source throws is explained in docs/errors.md: grep, not a list kept by hand.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** The .ts sources that run in a deployment: libs/ and services/, without tests, fixtures and the test kit. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return ['node_modules', 'dist', 'fixtures', 'testkit'].includes(f) ? [] : sources(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('.d.ts') && !p.endsWith('test-support.ts') ? [p] : [];
  });
}

// a code is the first argument of an error's constructor (`new BusError('X', …)`, `new AuthError('X', …)`,
// `super('X', …)`), of `make('X', …)` (NATS classification) or the second of `deadLetter(class, 'X', …)`;
// a template literal counts by its fixed prefix (`PUBLISH_REJECTED_${n}` → PUBLISH_REJECTED_)
const CODE =
  /(?:new [A-Za-z]*Error|super|make)\(\s*(['`])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_?)(?:\1|(\$\{))|deadLetter\([^,]+,\s*(['`])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_?)(?:\4|(\$\{))/g;

export function thrownCodes(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of [...sources(join(root, 'libs')), ...sources(join(root, 'services'))]) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(CODE)) {
      const code = m[2] ?? m[5]!;
      const template = !!(m[3] ?? m[6]);
      if (!code.includes('_') && !template) continue; // an Error('plain message'), not a code
      const key = template ? `${code}*` : code;
      found.set(key, [...(found.get(key) ?? []), file.slice(root.length)]);
    }
  }
  return found;
}

describe('error codes', () => {
  it('every code thrown in libs/ and services/ is in docs/errors.md', () => {
    const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');
    const codes = thrownCodes();
    assert.ok(codes.size > 60, `found only ${codes.size} codes: the pattern is broken`);
    for (const known of ['PUBLISH_FAILED', 'TARGET_READ_FAILED', 'CONFIG_INVALID', 'PUBLISH_REJECTED_*', 'NATS_TIMEOUT', 'DELIVER_ORDER_GAP']) {
      assert.ok(codes.has(known), `${known} not found in the source: the pattern misses a form`);
    }
    const missing = [...codes].filter(([code]) => (code.endsWith('*') ? !doc.includes(`\`${code.slice(0, -1)}`) : !doc.includes(`\`${code}\``)));
    assert.deepEqual(
      missing.map(([code, files]) => `${code} (${[...new Set(files)].join(', ')})`),
      [],
      'codes thrown but not in docs/errors.md',
    );
  });
});

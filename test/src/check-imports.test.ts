// scripts/check-imports.mjs (run by npm run lint): an import a workspace does not declare fails the lint.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const script = new URL('../../scripts/check-imports.mjs', import.meta.url).href;

describe('scripts/check-imports.mjs', () => {
  it('reports undeclared imports and production code importing a devDependency; accepts tests, type-only imports and builtins', async () => {
    const { check } = (await import(script)) as { check(root: string): string[] };
    const root = mkdtempSync(join(tmpdir(), 'check-imports-'));
    try {
      const write = (path: string, text: string) => {
        mkdirSync(join(root, path, '..'), { recursive: true });
        writeFileSync(join(root, path), text);
      };
      write('package.json', JSON.stringify({ workspaces: ['libs/*'] }));
      write('libs/a/package.json', JSON.stringify({ name: '@x/a', dependencies: { zod: '^4' }, devDependencies: { 'fast-check': '^4', '@x/b': '*' } }));
      write(
        'libs/a/src/ok.ts',
        "import { z } from 'zod';\nimport { readFileSync } from 'node:fs';\nimport type { B } from '@x/b';\nimport { y } from './y.js';\n",
      );
      write('libs/a/src/ok.test.ts', "import fc from 'fast-check';\n");
      write(
        'libs/a/src/bad.ts',
        "import { z } from 'zod';\nimport {\n  compile,\n} from 'ajv/dist/2020.js';\nexport { Stripe } from 'stripe';\nconst m = await imp" +
          "ort('@scope/lazy');\n",
      ); // split: this file's own check must not see it
      write('libs/a/src/dev-in-prod.ts', "import fc from 'fast-check';\n");
      const problems = check(root);
      assert.deepEqual(
        problems.map((p) => p.replace(/ which .*| a devDependency.*/, '')),
        [
          'libs/a/src/bad.ts:2: imports ajv,',
          'libs/a/src/bad.ts:5: imports stripe,',
          'libs/a/src/bad.ts:6: imports @scope/lazy,',
          'libs/a/src/dev-in-prod.ts:1: imports fast-check,',
        ],
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('this repository passes it', async () => {
    const { check } = (await import(script)) as { check(root?: string): string[] };
    assert.deepEqual(check(), []);
  });
});

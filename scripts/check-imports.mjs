#!/usr/bin/env node
// Every package a workspace imports is declared in its own package.json: npm hoists every
// dependency to the root node_modules, so an undeclared import works here and breaks where it
// is not hoisted (a pruned image, a published package). Run by `npm run lint`.
//
// Source files (src/, not tests) may import only `dependencies` (and `peerDependencies`): the
// runtime image drops devDependencies. Tests, test support and fixtures may also import
// `devDependencies`. `import type` is erased at build, so devDependencies satisfy it too.
// Exit 1 with one line per undeclared import.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** The workspace directories the root package.json names (`dir` or `dir/*`). */
function workspaces(root) {
  const globs = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).workspaces ?? [];
  return globs.flatMap((g) => {
    if (!g.endsWith('/*')) return [join(root, g)];
    const base = join(root, g.slice(0, -2));
    return readdirSync(base).map((d) => join(base, d)).filter((d) => statSync(d).isDirectory());
  }).filter((d) => { try { statSync(join(d, 'package.json')); return true; } catch { return false; } });
}

function tsFiles(dir) {
  let out = [];
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) { if (f !== 'node_modules' && f !== 'dist') out = out.concat(tsFiles(p)); }
    else if (/\.(ts|mts|js|mjs)$/.test(f) && !f.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The package an import specifier names: `@scope/name` or `name`; undefined for relative paths and builtins. */
export function packageOf(spec) {
  if (spec.startsWith('.') || spec.startsWith('/') || builtins.has(spec) || builtins.has(spec.split('/')[0])) return undefined;
  if (spec.startsWith('node:')) return undefined;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

// static imports and re-exports (`import … from 'x'`, `export … from 'x'`, `import 'x'`), dynamic import('x'), require('x')
const IMPORT = /^\s*(import|export)\s+(type\s+)?(?:[^'"`;]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/gm;

export function importsOf(text) {
  const out = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[3] ?? m[4] ?? m[5];
    out.push({ spec, typeOnly: !!m[2], line: text.slice(0, m.index).split('\n').length + (m[0].startsWith('\n') ? 1 : 0) });
  }
  return out;
}

/** Tests, their fixtures and support files (a support file says so: a `// check-imports: test support` line). */
const isTestFile = (p, text) => /\.test\.[mc]?[tj]s$/.test(p) || /test-support\.[tj]s$/.test(p) || p.includes('/fixtures/') || /^\/\/ check-imports: test support$/m.test(text);

/** The undeclared imports of every workspace under `root`, one line each. */
export function check(root = repoRoot) {
  const problems = [];
  for (const ws of workspaces(root)) {
    const pkg = JSON.parse(readFileSync(join(ws, 'package.json'), 'utf8'));
    const runtime = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}), pkg.name]);
    const dev = new Set(Object.keys(pkg.devDependencies ?? {}));
    let src;
    try { src = join(ws, 'src'); statSync(src); } catch { continue; }
    for (const file of tsFiles(src)) {
      const text = readFileSync(file, 'utf8');
      // the test, bench and testkit packages never run in production: devDependencies serve them
      const test = isTestFile(file, text) || pkg.name === '@bus/test' || pkg.name === '@bus/bench' || pkg.name === '@bus/testkit';
      for (const { spec, typeOnly, line } of importsOf(text)) {
        const name = packageOf(spec);
        if (!name || runtime.has(name)) continue;
        if (dev.has(name) && (test || typeOnly)) continue;
        const where = `${relative(root, file)}:${line}`;
        problems.push(dev.has(name)
          ? `${where}: imports ${name}, a devDependency of ${pkg.name}, from code that runs in production: move it to dependencies`
          : `${where}: imports ${name}, which ${pkg.name} does not declare: add it to ${relative(root, join(ws, 'package.json'))} (${test ? 'devDependencies' : 'dependencies'})`);
      }
    }
  }
  return problems;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const problems = check(process.argv[2] ?? repoRoot);
  for (const p of problems) console.error(p);
  if (problems.length) {
    console.error(`check-imports: ${problems.length} undeclared import(s)`);
    process.exit(1);
  }
  console.log('check-imports: every workspace declares what it imports');
}

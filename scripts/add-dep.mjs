// node scripts/add-dep.mjs libs/bus @bus/errors @bus/envelope — adds workspace deps ("*")
import { readFileSync, writeFileSync } from 'node:fs';
const [dir, ...deps] = process.argv.slice(2);
const file = `${dir}/package.json`;
const pkg = JSON.parse(readFileSync(file, 'utf8'));
pkg.dependencies = { ...(pkg.dependencies ?? {}) };
for (const d of deps) pkg.dependencies[d] = '*';
pkg.dependencies = Object.fromEntries(Object.entries(pkg.dependencies).sort(([a], [b]) => a.localeCompare(b)));
writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');

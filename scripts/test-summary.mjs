// Sums every package's node:test TAP results into one closing line.
// `--clean` removes the previous run's files first, so a package that did not run is not counted.
import { readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const FILE = '.test-results.tap';
const root = new URL('..', import.meta.url).pathname;
const dirs = ['streams', 'test', 'bench', ...['libs', 'services'].flatMap((d) =>
  existsSync(join(root, d)) ? readdirSync(join(root, d)).map((p) => join(d, p)) : [])];

if (process.argv.includes('--clean')) {
  for (const d of dirs) rmSync(join(root, d, FILE), { force: true });
  process.exit(0);
}

const total = { pass: 0, fail: 0, skipped: 0 };
const rows = [];
for (const d of dirs) {
  const file = join(root, d, FILE);
  if (!existsSync(file)) continue;
  const tap = readFileSync(file, 'utf8');
  const count = (k) => Number(tap.match(new RegExp(`^# ${k} (\\d+)$`, 'm'))?.[1] ?? 0);
  const r = { pass: count('pass'), fail: count('fail'), skipped: count('skipped') };
  for (const k of Object.keys(total)) total[k] += r[k];
  rows.push(`  ${d.padEnd(24)} ${String(r.pass).padStart(4)} passed  ${String(r.fail).padStart(3)} failed  ${String(r.skipped).padStart(3)} skipped`);
}
console.log(`\nper package:\n${rows.join('\n')}\n`);
console.log(`tests: ${total.pass} passed, ${total.fail} failed, ${total.skipped} skipped`);
process.exit(total.fail > 0 || total.pass === 0 ? 1 : 0);

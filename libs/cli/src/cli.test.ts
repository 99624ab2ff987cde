import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DateTime } from 'luxon';
import { formatAge, formatBytes, parseSince } from './index.js';

describe('cli helpers', () => {
  const now = DateTime.fromMillis(Date.parse('2026-11-25T12:00:00Z'), { zone: 'utc' });
  it('--since takes durations and ISO times, and says what it wants otherwise', () => {
    assert.equal(parseSince('2h', now), now.minus({ hours: 2 }).toMillis());
    assert.equal(parseSince('30m', now), now.minus({ minutes: 30 }).toMillis());
    assert.equal(parseSince('3d', now), now.minus({ days: 3 }).toMillis());
    assert.equal(parseSince('2026-11-24T00:00:00Z', now), Date.parse('2026-11-24T00:00:00Z'));
    assert.throws(() => parseSince('yesterday', now), /neither a duration like 2h/);
  });
  it('ages and sizes read like a person would write them', () => {
    assert.equal(formatAge(undefined), '-');
    assert.equal(formatAge(950), '950ms');
    assert.equal(formatAge(12_000), '12s');
    assert.equal(formatAge(3 * 3_600_000), '3h');
    assert.equal(formatBytes(1536), '1.5 KiB');
  });
});

describe('bus loads only the command it runs', () => {
  it('commandsFor: the named command; none for a bare --version; all for help, no command or an unknown one', async () => {
    const { commandsFor } = await import('./program.js');
    const argv = (...a: string[]) => ['node', 'bus', ...a];
    assert.deepEqual(commandsFor(argv('trace', 'abc', '--json')), ['trace']);
    assert.deepEqual(commandsFor(argv('dlq', 'list', '--since', '2h')), ['dlq']);
    assert.deepEqual(commandsFor(argv('--version')), []);
    const all = ['streams', 'dlq', 'trace', 'replay', 'rebuild', 'connectors', 'reconcile', 'up'];
    assert.deepEqual(commandsFor(argv()), all);
    assert.deepEqual(commandsFor(argv('--help')), all);
    assert.deepEqual(commandsFor(argv('help', 'dlq')), all);
    assert.deepEqual(commandsFor(argv('nosuch')), all, 'so the error can list the commands');
  });
  it('buildProgram registers just those, with --json', async () => {
    const { buildProgram } = await import('./program.js');
    const p = await buildProgram(['trace']);
    assert.deepEqual(p.commands.map((c) => c.name()), ['trace']);
    assert.ok(p.commands[0]!.options.some((o) => o.long === '--json'));
  });
});

import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { beginCommand } from './output.js';

type Register = (program: Command) => void;
/**
 * Each top-level command's module, loaded only when that command runs: together they pull in
 * every lib (reconcile, projection, delivery, the catalog, fastify…), which cost a `bus` call
 * about a second of CPU before it did anything.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  streams: async () => (await import('./streams.js')).registerStreams,
  dlq: async () => (await import('./dlq.js')).registerDlq,
  trace: async () => (await import('./trace.js')).registerTrace,
  replay: async () => (await import('./replay.js')).registerReplay,
  rebuild: async () => (await import('./rebuild.js')).registerRebuild,
  connectors: async () => (await import('./connectors.js')).registerConnectors,
  reconcile: async () => (await import('./reconcile.js')).registerReconcile,
  up: async () => (await import('./up.js')).registerUp,
};

/**
 * Which commands `argv` (process.argv) needs registered: the one it names; none for a bare
 * `--version`; all of them otherwise (help, an unknown or no command: help must list them all).
 */
export function commandsFor(argv: string[]): string[] {
  const args = argv.slice(2);
  const first = args.find((a) => !a.startsWith('-'));
  if (first && first in COMMANDS) return [first];
  if (!first && args.some((a) => a === '-V' || a === '--version')) return [];
  return Object.keys(COMMANDS);
}

/** The version in @bus/cli's package.json: what `bus --version` prints. */
export const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** The `bus` command with the subcommands `names` (default: all) registered; main.ts passes commandsFor(process.argv). */
export async function buildProgram(names: string[] = Object.keys(COMMANDS)): Promise<Command> {
  const program = new Command('bus')
    .description('operate the integration bus (NATS_URL and BUS_PREFIX select which one)')
    .version(version, '-V, --version', 'print the version of the bus command')
    .addHelpText('after', '\nEvery command but up takes --json (one JSON object on stdout). Exit codes: 0 ok, 1 error, ' +
      '2 something found (drift, differences, replays still failing), 3 cannot reach NATS, 130 interrupted. See docs/cli.md.')
    .showHelpAfterError();
  // in the order help lists them
  const registers = await Promise.all(Object.keys(COMMANDS).filter((n) => names.includes(n)).map((n) => COMMANDS[n]!()));
  for (const register of registers) register(program);

  /** Every command that runs something (not `up`, the launcher) takes --json, in the one format of output.ts. */
  const withJson = (c: Command): void => {
    for (const sub of c.commands) withJson(sub);
    if (c !== program && c.commands.length === 0 && c.name() !== 'up' && !c.options.some((o) => o.long === '--json')) {
      c.option('--json', 'one JSON object on stdout (docs/cli.md)');
    }
  };
  withJson(program);
  const fullName = (c: Command): string => (c.parent && c.parent !== program ? `${fullName(c.parent)} ${c.name()}` : c.name());
  program.hook('preAction', (_root, action) => beginCommand(fullName(action), action.opts().json === true));
  return program;
}

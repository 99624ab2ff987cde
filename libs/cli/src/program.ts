import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerConnectors } from './connectors.js';
import { registerDlq } from './dlq.js';
import { beginCommand } from './output.js';
import { registerRebuild } from './rebuild.js';
import { registerReconcile } from './reconcile.js';
import { registerReplay } from './replay.js';
import { registerStreams } from './streams.js';
import { registerTrace } from './trace.js';
import { registerUp } from './up.js';

/** The version in @bus/cli's package.json: what `bus --version` prints. */
export const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** The `bus` command with every subcommand registered (main.ts runs it; tests read it). */
export function buildProgram(): Command {
  const program = new Command('bus')
    .description('operate the integration bus (NATS_URL and BUS_PREFIX select which one)')
    .version(version, '-V, --version', 'print the version of the bus command')
    .addHelpText('after', '\nEvery command but up takes --json (one JSON object on stdout). Exit codes: 0 ok, 1 error, ' +
      '2 something found (drift, differences, replays still failing), 3 cannot reach NATS, 130 interrupted. See docs/cli.md.')
    .showHelpAfterError();
  registerStreams(program);
  registerDlq(program);
  registerTrace(program);
  registerReplay(program);
  registerRebuild(program);
  registerConnectors(program);
  registerReconcile(program);
  registerUp(program);

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

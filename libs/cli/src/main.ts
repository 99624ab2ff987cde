#!/usr/bin/env node
import { Command } from 'commander';
import { registerStreams } from './streams.js';
import { registerUp } from './up.js';

const program = new Command('bus')
  .description('operate the integration bus (NATS_URL and BUS_PREFIX select which one)')
  .showHelpAfterError();
registerStreams(program);
registerUp(program);

program.parseAsync().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});

#!/usr/bin/env node
import { Command } from 'commander';
import { registerDlq } from './dlq.js';
import { registerStreams } from './streams.js';
import { registerUp } from './up.js';

const program = new Command('bus')
  .description('operate the integration bus (NATS_URL and BUS_PREFIX select which one)')
  .showHelpAfterError();
registerStreams(program);
registerDlq(program);
registerUp(program);

program.parseAsync().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});

#!/usr/bin/env node
import { Command } from 'commander';
import { registerConnectors } from './connectors.js';
import { registerDlq } from './dlq.js';
import { registerRebuild } from './rebuild.js';
import { registerReconcile } from './reconcile.js';
import { registerReplay } from './replay.js';
import { registerStreams } from './streams.js';
import { registerTrace } from './trace.js';
import { registerUp } from './up.js';

const program = new Command('bus')
  .description('operate the integration bus (NATS_URL and BUS_PREFIX select which one)')
  .showHelpAfterError();
registerStreams(program);
registerDlq(program);
registerTrace(program);
registerReplay(program);
registerRebuild(program);
registerConnectors(program);
registerReconcile(program);
registerUp(program);

program.parseAsync().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});

#!/usr/bin/env node
import { BusError } from '@bus/errors';
import { ExitCodes, finishCommand } from './output.js';
import { buildProgram } from './program.js';

// Ctrl-C: a command that handles it (rebuild stops at a checkpoint) does so; any other ends here, with 130
process.on('SIGINT', () => {
  if (process.listenerCount('SIGINT') > 1) return;
  process.exit(finishCommand(new BusError('CLI_INTERRUPTED', 'transient', 'interrupted (Ctrl-C)'), ExitCodes.interrupted));
});

buildProgram().parseAsync().then(
  () => { process.exitCode = finishCommand(); },
  (err: unknown) => { process.exitCode = finishCommand(err); },
);

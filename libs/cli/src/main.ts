#!/usr/bin/env node
import { BusError } from '@bus/errors';
import { ExitCodes, finishCommand } from './output.js';
import { buildProgram, commandsFor } from './program.js';

// Ctrl-C: a command that handles it (rebuild stops at a checkpoint) does so; any other ends here, with 130
process.on('SIGINT', () => {
  if (process.listenerCount('SIGINT') > 1) return;
  process.exit(finishCommand(new BusError('CLI_INTERRUPTED', 'transient', 'interrupted (Ctrl-C)'), ExitCodes.interrupted));
});

// only the module of the command that runs is loaded (commandsFor)
buildProgram(commandsFor(process.argv)).then((program) => program.parseAsync()).then(
  () => { process.exitCode = finishCommand(); },
  (err: unknown) => { process.exitCode = finishCommand(err); },
);

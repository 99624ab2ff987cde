import { classifyNatsError } from '@bus/bus';
import { BusError } from '@bus/errors';

/**
 * Exit codes of every `bus` command (docs/cli.md), so a script or CI job can branch on them.
 * `found` is "nothing failed, but there is something a person should look at": drift after
 * `streams apply`, differences in a (dry) reconcile run, replays still failing.
 */
export const ExitCodes = { ok: 0, error: 1, found: 2, noNats: 3, interrupted: 130 } as const;
export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes];

/** Error codes that mean "NATS could not be reached" → exit 3. */
const NO_NATS_CODES = new Set(['CLI_NO_NATS', 'NATS_TIMEOUT', 'NATS_DISCONNECTED']);

/**
 * The one `--json` format (docs/cli.md): stdout carries exactly one JSON object, and nothing
 * else — human lines go to stderr in that mode —
 *
 *   {"command":"dlq list","result":…,"ok":true,"exitCode":0}
 *   {"command":"streams status","ok":false,"exitCode":3,"error":{"code":"CLI_NO_NATS","failureClass":"transient","message":"…"}}
 *
 * `result` is what the command found or did (an object or an array); lists are streamed
 * element by element, so a big DLQ is never held in memory, and the object stays valid JSON
 * when the command fails half-way (then `ok` is false and `error` says why).
 */
interface State {
  json: boolean;
  command: string;
  /** The result to print at the end (JSON mode). */
  result?: unknown;
  /** A streamed list was opened: `"result":[` is on stdout already. */
  streamed: boolean;
  items: number;
}

const state: State = { json: false, command: '', streamed: false, items: 0 };
let write: (s: string) => void = (s) => process.stdout.write(s);

/** Called before each command's action: its full name (`dlq list`) and whether `--json` was given. */
export function beginCommand(command: string, json: boolean, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  Object.assign(state, { json, command, result: undefined, streamed: false, items: 0 });
  write = out;
  // human lines (progress, "3 discarded") must not break the JSON on stdout
  if (json) console.log = console.error;
}

/** True when the running command was given `--json`. */
export function jsonMode(): boolean {
  return state.json;
}

/** The command's result, printed as `result` in JSON mode (the last call wins); a no-op otherwise. */
export function emit(result: unknown): void {
  if (state.json) state.result = result;
}

/** One element of a list result, written at once in JSON mode (a no-op otherwise). */
export function emitItem(item: unknown): void {
  if (!state.json) return;
  if (!state.streamed) write(`{"command":${JSON.stringify(state.command)},"result":[`);
  write(`${state.items++ ? ',' : ''}${JSON.stringify(item)}`);
  state.streamed = true;
}

/** Something a person should look at was found: exit 2 unless a failure says otherwise. */
export function markFound(): void {
  if (!process.exitCode) process.exitCode = ExitCodes.found;
}

/** The exit code for an error: 3 when NATS could not be reached, else 1. */
export function exitCodeOf(err: unknown): ExitCode {
  const code = err instanceof BusError ? err.code : classifyNatsError(err)?.code;
  return code && NO_NATS_CODES.has(code) ? ExitCodes.noNats : ExitCodes.error;
}

/**
 * Ends the command: in JSON mode writes (or closes) the one object; returns the exit code.
 * With an error, the message goes to stderr too, so a person running `--json` sees it.
 */
export function finishCommand(err?: unknown, exitCodeOverride?: ExitCode): number {
  const exitCode = exitCodeOverride ?? (err === undefined ? Number(process.exitCode ?? 0) : exitCodeOf(err));
  const message = err instanceof Error ? err.message : err === undefined ? '' : String(err);
  if (err !== undefined) process.stderr.write(`${message}\n`);
  if (!state.json) return exitCode;
  const error = err === undefined ? undefined : {
    code: err instanceof BusError ? err.code : (classifyNatsError(err)?.code ?? 'CLI_FAILED'),
    failureClass: err instanceof BusError ? err.failureClass : (classifyNatsError(err)?.failureClass ?? 'permanent'),
    message,
  };
  const tail = { ok: err === undefined && (exitCode === ExitCodes.ok || exitCode === ExitCodes.found), exitCode, ...(error ? { error } : {}) };
  if (state.streamed) write(`],${JSON.stringify(tail).slice(1)}\n`);
  else write(`${JSON.stringify({ command: state.command, ...(state.result === undefined ? {} : { result: state.result }), ...tail })}\n`);
  state.json = false;
  return exitCode;
}

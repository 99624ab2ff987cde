import { hostname, userInfo } from 'node:os';
import { installRefreshToken, loadTokenKeys, type TokenState, tokenState } from '@bus/auth';
import type { Bus } from '@bus/bus';
import { BusError } from '@bus/errors';
import type { Command } from 'commander';
import { printTable, withBus } from './context.js';
import { emit } from './output.js';

/** What `bus connectors auth` did: the token state after it (never a token), and whether it resumed the connector. */
export interface AuthReport {
  state: TokenState;
  /** Set with --set-refresh-token. */
  installed?: { by: string; resumed: boolean; pausedFor?: string };
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('paste the refresh token, then Enter and Ctrl-D (it is not echoed anywhere else): ');
  let text = '';
  for await (const chunk of process.stdin) text += chunk.toString();
  return text.trim();
}

/**
 * Installs `refreshToken` (from a new consent) for `connector`: sealed under BUS_TOKEN_KEY,
 * replacing what is stored (the stored access token goes too), resumes the connector when it
 * is paused (unless `resume` is false), and audits it (stage `auth`, outcome `refresh_token_set`).
 */
export async function setRefreshToken(bus: Bus, connector: string, refreshToken: string, o: { resume?: boolean; by?: string } = {}): Promise<AuthReport> {
  if (!refreshToken || /\s/.test(refreshToken)) {
    throw new BusError('CLI_BAD_REFRESH_TOKEN', 'business', 'the refresh token read from stdin is empty or contains whitespace; nothing was changed. Pipe exactly the token: ' +
      `printf %s "$TOKEN" | bus connectors auth ${connector} --set-refresh-token`);
  }
  const by = o.by ?? `cli:${userInfo().username}@${hostname()}`;
  const keys = loadTokenKeys(process.env, () => process.stderr.write('! BUS_TOKEN_KEY is unset: sealing with the demo key (use the key the services use)\n'));
  const state = await installRefreshToken({ kv: await bus.kv(bus.names.kv.tokens), connector, keys, refreshToken, by });
  const connectors = await bus.kv(bus.names.kv.connectors);
  const e = await connectors.get(connector);
  const paused = e?.operation === 'PUT' && e.value.length ? (e.json() as { paused?: boolean; reason?: string }) : {};
  const resumed = !!paused.paused && o.resume !== false;
  if (resumed) {
    await connectors.put(connector, JSON.stringify({ paused: false, reason: 'resumed: a new refresh token was set', at: new Date().toISOString(), by }));
  }
  bus.audit({
    stage: 'auth', outcome: 'refresh_token_set', correlationId: `auth-${connector}-${Date.now()}`, connector,
    reason: `a new refresh token was set by ${by}${resumed ? '; the connector was resumed' : paused.paused ? '; the connector stays paused (--no-resume)' : ''}`,
    details: { refreshGeneration: state.refreshGeneration, sealedWith: state.sealedWith },
  });
  await bus.nc.flush();
  return { state, installed: { by, resumed, ...(paused.paused ? { pausedFor: paused.reason } : {}) } };
}

const ago = (iso: string | undefined) => (iso ? `${iso} (${Math.round((Date.now() - Date.parse(iso)) / 60_000)} min ago)` : '-');

function printState(s: TokenState): void {
  const keys = (() => {
    try {
      return loadTokenKeys({ ...process.env, NODE_ENV: undefined });
    } catch {
      return undefined;
    }
  })();
  const expires = s.expiresAt ? `${s.expiresAt} (${Date.parse(s.expiresAt) > Date.now() ? 'valid' : 'expired: refreshed at the next call'})` : 'none stored';
  const rows: Record<string, string>[] = [
    { what: 'stored', value: s.stored ? 'yes' : 'no (the first call uses the environment\'s credentials)' },
    { what: 'access token expires', value: expires },
    { what: 'refresh token', value: s.hasRefreshToken ? `stored (from ${s.refreshTokenFrom ?? '?'}, ${ago(s.refreshTokenSetAt)}${s.refreshTokenSetBy ? ` by ${s.refreshTokenSetBy}` : ''}; generation ${s.refreshGeneration})` : 'none' },
    { what: 'last refresh', value: s.refreshedAt ? `${ago(s.refreshedAt)} by ${s.refreshedBy ?? '?'}` : '-' },
    { what: 'last error', value: s.lastError ? `${s.lastError.at} ${s.lastError.message}` : '-' },
    { what: 'refresh token refused', value: s.refused ? `${s.refused.at}: set a new one with --set-refresh-token` : 'no' },
    { what: 'refresh in doubt', value: s.inDoubt ? `since ${s.inDoubt.since} (a request got no answer; by ${s.inDoubt.by})` : 'no' },
    { what: 'sealed with key', value: s.sealedWith ? `${s.sealedWith}${keys && s.sealedWith === keys.keys[0]!.id ? ' (current)' : keys?.keys.some((k) => k.id === s.sealedWith) ? ' (an older key: rewritten at the next refresh)' : ''}` : '-' },
  ];
  console.log(`connector ${s.connector}`);
  printTable(rows, { write: (line: string) => console.log(line.trimEnd()) } as NodeJS.WritableStream);
}

/** `bus connectors auth <connector> [--set-refresh-token] [--no-resume]`: registered under `connectors`. */
export function registerConnectorsAuth(connectors: Command): void {
  connectors.command('auth <connector>')
    .description('OAuth2 token state (expiry, last refresh, last error — never a token); --set-refresh-token installs one read from stdin and resumes the connector')
    .option('--set-refresh-token', 'read a refresh token (after a new consent) from stdin, store it sealed, resume the connector; audited')
    .option('--no-resume', 'with --set-refresh-token: leave a paused connector paused')
    .action(async (name: string, o: { setRefreshToken?: boolean; resume: boolean }) => {
      const token = o.setRefreshToken ? await readStdin() : undefined;
      await withBus(async (bus) => {
        const report: AuthReport = token !== undefined
          ? await setRefreshToken(bus, name, token, { resume: o.resume })
          : { state: await tokenState(await bus.kv(bus.names.kv.tokens), name) };
        emit(report); // --json: {command, result: {state, installed?}, ok, exitCode}
        if (report.installed) {
          const after = report.installed.resumed ? `; ${name} resumed (it was paused: ${report.installed.pausedFor ?? 'paused'})` : report.installed.pausedFor ? `; ${name} stays paused (--no-resume)` : '';
          console.log(`refresh token set for ${name}, sealed with key ${report.state.sealedWith}${after}`);
        }
        printState(report.state);
      });
    });
}

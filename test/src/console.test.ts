// The operator console in a real Chromium (playwright-core, Debian's /usr/bin/chromium) against a
// real bus: the testkit's nats-server and the real ingest, transform, deliver, sandbox and console
// processes, started by the launcher (`bus up`) as `npm start` does. Screenshots go to docs/console/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { type Bus, auditRecordsOf } from '@bus/bus';
import { connectorStates, matchingEntries, trace } from '@bus/operations';
import { freePort, startNats, type TestNats, uniquePrefix, waitFor } from '@bus/testkit';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { testBus } from './support.js';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const cli = fileURLToPath(new URL('../../libs/cli/dist/main.js', import.meta.url));
const shots = fileURLToPath(new URL('../../docs/console/', import.meta.url));
const TOKEN = 'test-console-token-0123456789';
const STANDARD_SECRET = 'whsec_ZGVtby1zdGFuZGFyZC13ZWJob29rcy1zZWNyZXQ='; // the demo secret bus up sets
const CRM_KEY = 'demo-crm-key';

describe('the console in Chromium, on a running bus', { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM} (bash scripts/bootstrap.sh installs it)` }, () => {
  let nats: TestNats;
  let bus: Bus;
  let browser: BrowserContext;
  let page: Page;
  let launcher: ReturnType<typeof spawn>;
  let output = '';
  let consoleUrl = '';
  let ingestUrl = '';
  let sandboxUrl = '';
  const dataDir = mkdtempSync(join(tmpdir(), 'bus-console-'));
  const profile = mkdtempSync(join(tmpdir(), 'bus-console-chromium-'));

  before(async () => {
    nats = await startNats();
    const prefix = uniquePrefix();
    bus = await testBus(nats.url, prefix);
    const [sandboxPort, ingestPort, consolePort] = [await freePort(), await freePort(), await freePort()];
    sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
    ingestUrl = `http://127.0.0.1:${ingestPort}`;
    launcher = spawn(process.execPath, [cli, 'up'], {
      detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env, NATS_URL: nats.url, BUS_PREFIX: prefix, BUS_DATA_DIR: dataDir, LOG_LEVEL: 'warn',
        BUS_UP_SERVICES: 'ingest,transform,deliver,reconcile,sandbox,console', RECONCILE_EVERY_SEC: '0', RECONCILE_POLL_SOURCES: '0', RECONCILE_OPS_PORT: '0',
        SANDBOX_PORT: String(sandboxPort), CRM_BASE_URL: `${sandboxUrl}/crm`, WAREHOUSE_BASE_URL: `${sandboxUrl}/warehouse`, WAREHOUSE_TOKEN_URL: `${sandboxUrl}/oauth/token`,
        INGEST_PORT: String(ingestPort), CONSOLE_PORT: String(consolePort), TRANSFORM_OPS_PORT: '0', DELIVER_OPS_PORT: '0', CONSOLE_OPS_PORT: '0',
        CONSOLE_TOKENS: `alice:${TOKEN}`, BUS_DLQ_STATS_INTERVAL_MS: '0',
      },
    });
    launcher.stdout?.on('data', (d: Buffer) => { output += d; });
    launcher.stderr?.on('data', (d: Buffer) => { output += d; });
    const started = Date.now();
    await waitFor(() => ['ingest', 'transform', 'deliver', 'reconcile', 'sandbox', 'console'].every((s) => new RegExp(`✔ ${s} `).test(output)),
      { what: 'every service ready', timeoutMs: 90_000 }).catch((err: Error) => { throw new Error(`${err.message}\n${output.slice(-3000)}`); });
    consoleUrl = /✔ console +url (\S+)/.exec(output)![1]!;
    console.log(`# bus up in ${Date.now() - started} ms; console at ${consoleUrl}`);
    // a fresh profile (--user-data-dir) per run: playwright takes it as the persistent context's directory
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 800 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    mkdirSync(shots, { recursive: true });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (launcher && launcher.exitCode === null) {
      const exited = new Promise((res) => launcher.once('exit', res));
      process.kill(-launcher.pid!, 'SIGINT'); // one Ctrl-C: every service drains, then the launcher exits
      await Promise.race([exited, new Promise((res) => setTimeout(res, 30_000).unref())]);
      try {
        process.kill(-launcher.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await bus?.close();
    await nats?.stop({ removeStore: true });
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  });

  async function webhook(id: string, data: Record<string, unknown>): Promise<{ correlationId: string; eventId: string }> {
    const payload = JSON.stringify({ type: 'contact.updated', data });
    const at = new Date();
    const res = await fetch(`${ingestUrl}/webhooks/standard`, {
      method: 'POST', body: payload,
      headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(STANDARD_SECRET).sign(id, at, payload) },
    });
    assert.equal(res.status, 202, await res.clone().text());
    return (await res.json()) as { correlationId: string; eventId: string };
  }
  const crmRecord = async (id: string) => {
    const r = await fetch(`${sandboxUrl}/crm/contacts/${id}`, { headers: { 'x-api-key': CRM_KEY } });
    return r.ok ? ((await r.json()) as { version: number; fields: Record<string, unknown> }) : undefined;
  };

  it('a page without the token is refused: 401, the sign-in form, no figures; a wrong token is refused too', async () => {
    const res = await page.goto(`${consoleUrl}/`);
    assert.equal(res?.status(), 401);
    assert.equal(await page.locator('h1').textContent(), 'Sign in');
    assert.equal(await page.locator('table').count(), 0, 'nothing of the bus is shown');
    const api = await fetch(`${consoleUrl}/api/overview`);
    assert.equal(api.status, 401);
    const forged = await fetch(`${consoleUrl}/connectors/pause`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: 'bus_console=alice.forged' }, body: 'connector=crm&reason=x' });
    assert.equal(forged.status, 401, 'a forged session cannot act');
    await page.getByLabel('Operator token').fill('not-the-token-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    assert.match(await page.locator('[role=alert]').textContent() ?? '', /not one of CONSOLE_TOKENS/);
    await page.screenshot({ path: join(shots, 'sign-in.png') });
    // with the token: signed in by keyboard only (label → field, Enter submits)
    await page.getByLabel('Operator token').fill(TOKEN);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${consoleUrl}/`);
    assert.equal(await page.locator('h1').textContent(), 'Overview');
  });

  it('a webhook posted → its trace found from the search box, every step; the overview shows crm and warehouse live', async () => {
    const { correlationId, eventId } = await webhook(`msg_console_${Date.now()}`, { id: 'c-1', version: 1, email: 'ada@example.com', name: 'Ada' });
    await waitFor(async () => (await crmRecord('c-1'))?.version === 1, { what: 'c-1 at the sandbox CRM', timeoutMs: 30_000 });
    await page.goto(`${consoleUrl}/trace`);
    await page.getByLabel(/Correlation id, event id or entity/).fill(correlationId);
    await page.getByRole('button', { name: 'Search' }).click();
    const rows = await waitFor(async () => {
      const text = (await page.locator('table.trace tbody').allTextContents()).join(' ');
      if (/deliver\s*delivered/.test(text)) return text;
      await page.reload();
      return undefined;
    }, { what: 'the trace with the delivery', timeoutMs: 20_000 });
    assert.match(rows, /ingest\s*stored/);
    assert.match(rows, /transform\s*transformed/);
    assert.match(rows, /deliver\s*delivered/);
    assert.doesNotMatch(await page.content(), /ada@example\.com/, 'no payload in a trace');
    await page.screenshot({ path: join(shots, 'trace.png'), fullPage: true });
    // the same action by its event id and by its entity
    await page.getByLabel(/Correlation id, event id or entity/).fill(eventId);
    await page.getByLabel('Key is').selectOption('event');
    await page.getByRole('button', { name: 'Search' }).click();
    assert.match(await page.locator('main').textContent() ?? '', new RegExp(`correlation ${correlationId}`));
    await page.goto(`${consoleUrl}/trace?q=${encodeURIComponent('contact/c-1')}`);
    assert.match(await page.locator('main').textContent() ?? '', new RegExp(`correlation ${correlationId}`));

    await page.goto(`${consoleUrl}/`);
    const crmRow = page.locator('tr[data-connector="crm"]');
    await crmRow.waitFor();
    assert.equal(await page.locator('tr[data-connector="warehouse"]').count(), 1, 'warehouse on the overview');
    // live: the page's script refreshes the figures; a delivery after the page loaded shows up without a reload
    await webhook(`msg_console_live_${Date.now()}`, { id: 'c-2', version: 1, email: 'bob@example.com' });
    await waitFor(async () => Number((await crmRow.locator('td').nth(2).textContent())?.trim()) > 0, { what: 'delivered/s above 0 on the live overview', timeoutMs: 20_000 });
    assert.match(await crmRow.locator('svg').getAttribute('aria-label') ?? '', /crm: [1-9]\d* delivered/);
    await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true });
  });

  it('a dead-lettered command replayed from the page (dry-run count first) → delivered at the target, audited with who', async () => {
    const set = await fetch(`${sandboxUrl}/crm/_faults`, { method: 'POST', headers: { 'x-api-key': CRM_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ status: 422, times: 1 }) });
    assert.equal(set.status, 200);
    await webhook(`msg_console_dlq_${Date.now()}`, { id: 'd-1', version: 1, email: 'dora@example.com', phone: '+44 20 0000' });
    const [entry] = await waitFor(async () => {
      const m = await matchingEntries(bus, { stage: 'deliver', connector: 'crm' });
      return m.length ? m : undefined;
    }, { what: 'the rejected command in the DLQ', timeoutMs: 30_000 });
    assert.equal(entry!.failureClass, 'business');
    assert.equal(await crmRecord('d-1'), undefined);

    await page.goto(`${consoleUrl}/dlq`);
    await page.getByLabel('Connector').selectOption('crm');
    await page.getByLabel('Failure class').selectOption('business');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('link', { name: `entry ${entry!.seq}` }).click();
    const shown = await page.locator('main').textContent() ?? '';
    assert.match(shown, /rejected by the sandbox/);
    assert.doesNotMatch(shown, /dora@example\.com|\+44 20 0000/, 'personal fields are masked');
    assert.match(shown, /redacted:[0-9a-f]{8}/);
    await page.screenshot({ path: join(shots, 'dead-letter.png'), fullPage: true });
    await page.goto(`${consoleUrl}/dlq?connector=crm`);
    await page.screenshot({ path: join(shots, 'dead-letters.png'), fullPage: true });
    await page.getByRole('button', { name: /Replay matching/ }).click();
    assert.match(await page.locator('#dry-run').textContent() ?? '', /Dry run: 1 entry would be replayed/);
    assert.equal((await matchingEntries(bus, { connector: 'crm' })).length, 1, 'the dry run changed nothing');
    await page.getByRole('button', { name: 'Replay these 1' }).click();
    assert.match(await page.locator('[role=status]').first().textContent() ?? '', /1 replayed, 0 still failing/);
    await waitFor(async () => (await crmRecord('d-1'))?.version === 1, { what: 'd-1 delivered after the replay', timeoutMs: 30_000 });
    assert.deepEqual(await matchingEntries(bus, { connector: 'crm' }), []);
    const audited = await waitFor(async () => {
      for await (const r of auditRecordsOf(bus, 'dlq', 'replayed')) if (r.by === 'console:alice') return r;
      return undefined;
    }, { what: 'the replay audited with who' });
    assert.equal(audited.connector, 'crm');
  });

  it('a connector paused from the page → the library call `bus connectors list` makes (and the command itself) show it paused, with why and who', async () => {
    await page.goto(`${consoleUrl}/connectors`);
    const row = page.locator('tr[data-connector="crm"]');
    await row.getByLabel('Reason').fill('target maintenance until 14:00');
    await row.getByRole('button', { name: 'Pause crm' }).click();
    assert.match(await page.locator('[role=status]').first().textContent() ?? '', /crm paused/);
    const crm = (await connectorStates(bus)).find((s) => s.connector === 'crm')!;
    assert.deepEqual([crm.paused, crm.reason, crm.by], [true, 'target maintenance until 14:00', 'console:alice']);
    const list = spawn(process.execPath, [cli, 'connectors', 'list'], { env: { ...process.env, NATS_URL: nats.url, BUS_PREFIX: bus.names.prefix } });
    let text = '';
    list.stdout.on('data', (d: Buffer) => { text += d; });
    assert.equal(await new Promise((res) => list.once('exit', res)), 0);
    assert.match(text, /crm +paused .*target maintenance until 14:00/);
    await page.screenshot({ path: join(shots, 'connectors.png'), fullPage: true });
    // an action without the page's CSRF token is refused, even with the session cookie
    const cookie = (await browser.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const forged = await fetch(`${consoleUrl}/connectors/resume`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: 'connector=crm&reason=x' });
    assert.equal(forged.status, 403);
    assert.equal((await connectorStates(bus)).find((s) => s.connector === 'crm')!.paused, true, 'still paused');
    await row.getByRole('button', { name: 'Resume crm' }).click();
    assert.equal((await connectorStates(bus)).find((s) => s.connector === 'crm')!.paused, false);
  });

  it('reconcile from the page: a run started, its flagged difference (the target is newer) settled as "target is right", audited with who', async () => {
    // someone at the CRM wrote c-1 behind the bus's back: the target holds a version no source sent
    const put = await fetch(`${sandboxUrl}/crm/contacts/c-1`, { method: 'PUT', headers: { 'x-api-key': CRM_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ version: 7, fields: { email: 'ada@crm.example' } }) });
    assert.equal(put.status, 200);
    await page.goto(`${consoleUrl}/reconcile`);
    await page.getByLabel('Connector').selectOption('crm');
    await page.getByLabel(/dry run/).uncheck();
    await page.getByRole('button', { name: 'Start a run' }).click();
    assert.match(await page.locator('h1').textContent() ?? '', /^Reconcile run /);
    await waitFor(async () => {
      if (/flagged/.test(await page.locator('table').last().textContent().catch(() => '') ?? '') && /status\s*done/.test(await page.locator('dl').textContent() ?? '')) return true;
      await page.reload();
      return undefined;
    }, { what: 'the run done with its flagged item on the page', timeoutMs: 45_000 });
    const item = page.locator('tr', { hasText: 'target-newer' });
    assert.match(await item.textContent() ?? '', /contact c-1/);
    await item.getByLabel('settle as').selectOption('target');
    await page.screenshot({ path: join(shots, 'reconcile-run.png'), fullPage: true });
    await item.getByRole('button', { name: 'Resolve' }).click();
    assert.match(await page.locator('[role=status]').first().textContent() ?? '', /settled as target/);
    assert.match(await page.locator('tr', { hasText: 'target-newer' }).textContent() ?? '', /settled: target \(console:alice\)/);
    // the run's own trace (its correlation id is the run id): started from the console by alice, the item settled by alice
    const runId = (await page.locator('h1').textContent())!.replace('Reconcile run ', '');
    const steps = await waitFor(async () => {
      const t = (await trace(bus, runId)).correlations[0]?.records ?? [];
      return t.some((r) => r.outcome === 'resolved-target') ? t : undefined;
    }, { what: 'the run\'s audit records' });
    assert.equal(steps.find((r) => r.outcome === 'reconcile-run-started')?.by, 'console:alice');
    assert.match(steps.find((r) => r.outcome === 'resolved-target')?.reason ?? '', /settled as target by console:alice/);
    await page.goto(`${consoleUrl}/reconcile`);
    await page.screenshot({ path: join(shots, 'reconcile.png'), fullPage: true });
  });
});

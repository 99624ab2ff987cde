import type { TraceResult } from '@bus/bus';
import type { ActivitySlot, DlqFilter, DlqMatch, Overview, ReportItem, RunReport, ShownDeadLetter, TraceStep } from '@bus/operations';
import { age, bytes, csrfField, type Html, html } from './html.js';

const rate = (n: number) => (n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(2));
const time = (iso: string | undefined) => (iso ? iso.slice(0, 19).replace('T', ' ') : '–');

/** A bar chart of the last minutes (delivered, failed on top), with a text equivalent. */
function chart(connector: string, series: ActivitySlot[]): Html {
  const w = 4;
  const h = 36;
  const max = Math.max(1, ...series.map((s) => s.delivered + s.failed + 0), ...series.map((s) => s.in));
  const total = series.reduce((n, s) => n + s.delivered, 0);
  const failed = series.reduce((n, s) => n + s.failed, 0);
  const minutes = Math.round((series.length * (series[1] ? series[1].at - series[0]!.at : 5_000)) / 60_000);
  const label = `${connector}: ${total} delivered, ${failed} failed in the last ${minutes} minutes`;
  return html`<svg class="chart" role="img" aria-label="${label}" width="${series.length * w}" height="${h}" viewBox="0 0 ${series.length * w} ${h}">
<title>${label}</title>
${series.map((s, i) => {
    const d = (s.delivered / max) * h;
    const f = (s.failed / max) * h;
    return html`<rect class="ok" x="${i * w}" y="${h - d}" width="${w - 1}" height="${d}"></rect>${f ? html`<rect class="bad" x="${i * w}" y="${h - d - f}" width="${w - 1}" height="${f}"></rect>` : ''}`;
  })}
</svg>`;
}

/** The overview's live part: re-rendered by the page's script every few seconds. */
export function overviewFragment(o: Overview, series: (connector: string) => ActivitySlot[]): Html {
  return html`<p class="updated">Figures at ${time(o.at)} UTC; rates over the last minute, refreshed every 2 s.</p>
<h2 id="connectors-h">Connectors</h2>
<table aria-labelledby="connectors-h">
<thead><tr><th scope="col">connector</th><th scope="col">state</th><th scope="col">in /s</th><th scope="col">delivered /s</th><th scope="col">p95 delivery</th>
<th scope="col">queue</th><th scope="col">oldest pending</th><th scope="col">DLQ</th><th scope="col">token expires</th><th scope="col">last 10 minutes</th></tr></thead>
<tbody>
${o.connectors.length ? o.connectors.map((c) => html`<tr data-connector="${c.connector}">
<th scope="row">${c.connector}</th>
<td><span class="state state-${c.state.replace(' ', '-')}">${c.state}</span>${c.why ? html`<br><small>${c.why}</small>` : ''}</td>
<td class="num">${rate(c.inPerSec)}</td><td class="num">${rate(c.deliveredPerSec)}${c.failedPerSec ? html`<br><small>${rate(c.failedPerSec)} failed</small>` : ''}</td>
<td class="num">${c.p95DeliveryMs === undefined ? '–' : `${Math.round(c.p95DeliveryMs)} ms`}</td>
<td class="num">${c.queue}${c.inFlight ? html`<br><small>${c.inFlight} in flight</small>` : ''}</td>
<td class="num">${age(c.oldestPendingAgeMs)}</td>
<td class="num">${c.dlq ? html`<a href="/dlq?connector=${encodeURIComponent(c.connector)}">${c.dlq}</a><br><small>oldest ${age(c.dlqOldestAgeMs)}</small>` : '0'}</td>
<td>${c.tokenExpiresAt ? time(c.tokenExpiresAt) : '–'}${c.tokenProblem ? html`<br><small class="bad">${c.tokenProblem}</small>` : ''}</td>
<td>${chart(c.connector, series(c.connector))}</td>
</tr>`) : html`<tr><td colspan="10">No deliver consumers yet: is deliver running?</td></tr>`}
</tbody></table>
<h2 id="streams-h">Streams</h2>
<table aria-labelledby="streams-h">
<thead><tr><th scope="col">stream</th><th scope="col">messages</th><th scope="col">bytes</th><th scope="col">consumers</th><th scope="col">lag (pending)</th><th scope="col">oldest pending</th></tr></thead>
<tbody>
${o.streams.map((s) => {
    const lag = s.consumers.reduce((n, c) => n + c.pending + c.ackPending, 0);
    const oldest = s.consumers.map((c) => c.oldestPendingAgeMs).filter((a): a is number => a !== undefined);
    return html`<tr><th scope="row">${s.stream}</th><td class="num">${s.messages}</td><td class="num">${bytes(s.bytes)}</td><td class="num">${s.consumers.length}</td>
<td class="num">${lag}</td><td class="num">${age(oldest.length ? Math.max(...oldest) : undefined)}</td></tr>`;
  })}
</tbody></table>
${o.sources.length ? html`<h2 id="sources-h">Sources</h2>
<table aria-labelledby="sources-h">
<thead><tr><th scope="col">source</th><th scope="col">expects an event every</th><th scope="col">last event</th><th scope="col">state</th></tr></thead>
<tbody>
${o.sources.map((s) => html`<tr data-source="${s.source}"><th scope="row">${s.source}</th><td class="num">${s.expectEverySec} s</td>
<td class="num">${s.silentSec === undefined ? 'none kept' : `${age(s.silentSec * 1000)} ago`}</td>
<td>${s.quiet ? html`<span class="state state-paused">quiet</span>` : 'ok'}</td></tr>`)}
</tbody></table>` : ''}`;
}

export function overviewPage(fragment: Html): Html {
  return html`<section id="live" data-refresh="/fragment/overview" data-every="2000" aria-label="Live figures">${fragment}</section>`;
}

export function tracePage(q: { q?: string; kind?: string; since?: string }, found: TraceResult | undefined, steps: (c: TraceResult['correlations'][number]) => TraceStep[]): Html {
  const kinds = [['', 'any (guess)'], ['correlation', 'correlation id'], ['event', 'event id'], ['entity', 'entity (type/id)']];
  return html`<form method="get" action="/trace" class="search" role="search">
<label for="q">Correlation id, event id or entity (e.g. <code>contact/c-1</code>)</label>
<input id="q" name="q" type="search" value="${q.q ?? ''}" required autocomplete="off" spellcheck="false">
<label for="kind">Key is</label>
<select id="kind" name="kind">${kinds.map(([v, l]) => html`<option value="${v}"${(q.kind ?? '') === v ? html` selected` : ''}>${l}</option>`)}</select>
<label for="since">Since (optional: 2h, 3d, or an ISO time)</label>
<input id="since" name="since" value="${q.since ?? ''}" autocomplete="off">
<button type="submit">Search</button>
</form>
${found === undefined ? '' : found.correlations.length === 0
    ? html`<p role="status">No audit records for <code>${found.key}</code> (AUDIT keeps 30 days).</p>`
    : html`<p role="status">${found.correlations.length} business action${found.correlations.length === 1 ? '' : 's'} for ${found.kind} <code>${found.key}</code>.</p>
${found.correlations.map((c, i) => html`<section aria-labelledby="corr-${i}">
<h2 id="corr-${i}">correlation <code>${c.correlationId}</code></h2>
<table class="trace">
<thead><tr><th scope="col">time</th><th scope="col">stage</th><th scope="col">outcome</th><th scope="col">connector</th><th scope="col">entity</th><th scope="col">attempt</th><th scope="col">status</th><th scope="col">detail</th><th scope="col">by</th></tr></thead>
<tbody>${steps(c).map((s) => html`<tr class="outcome-${s.outcome}"><td>${s.at.slice(0, 23).replace('T', ' ')}</td><td>${s.stage}</td><td>${s.outcome}</td><td>${s.connector}</td><td>${s.entity}</td>
<td class="num">${s.attempt}</td><td class="num">${s.status}</td><td>${s.detail}</td><td>${s.by ?? ''}</td></tr>`)}</tbody>
</table></section>`)}`}`;
}

const STAGES = ['', 'ingest', 'transform', 'deliver'];
const CLASSES = ['', 'transient', 'business', 'permanent', 'ambiguous'];
const AGES = [['', 'any time'], ['1h', 'last hour'], ['24h', 'last day'], ['7d', 'last week']];

/** The filter as hidden fields, so an action acts on exactly what was listed. */
const filterFields = (f: DlqFilter) => html`${f.stage ? html`<input type="hidden" name="stage" value="${f.stage}">` : ''}${f.connector ? html`<input type="hidden" name="connector" value="${f.connector}">` : ''}${f.failureClass ? html`<input type="hidden" name="class" value="${f.failureClass}">` : ''}${f.since ? html`<input type="hidden" name="since" value="${f.since}">` : ''}`;

export function dlqPage(f: DlqFilter, matches: DlqMatch[], limit: number, csrf: string, connectors: string[]): Html {
  const select = (id: string, label: string, options: string[][], value?: string) => html`<label for="${id}">${label}</label>
<select id="${id}" name="${id}">${options.map(([v, l]) => html`<option value="${v}"${(value ?? '') === v ? html` selected` : ''}>${l}</option>`)}</select>`;
  return html`<form method="get" action="/dlq" class="filters" aria-label="Filter dead letters">
${select('stage', 'Stage', STAGES.map((s) => [s, s || 'any']), f.stage)}
${select('connector', 'Connector', [['', 'any'], ...connectors.map((c) => [c, c])], f.connector)}
${select('class', 'Failure class', CLASSES.map((s) => [s, s || 'any']), f.failureClass)}
${select('since', 'Dead-lettered', AGES, f.since)}
<button type="submit">Filter</button>
</form>
<p role="status">${matches.length >= limit ? `The first ${limit} entries` : `${matches.length} entr${matches.length === 1 ? 'y' : 'ies'}`} match.</p>
${matches.length ? html`<table>
<thead><tr><th scope="col">seq</th><th scope="col">stage</th><th scope="col">connector</th><th scope="col">class</th><th scope="col">code</th><th scope="col">attempts</th><th scope="col">replays</th><th scope="col">age</th><th scope="col">reason</th></tr></thead>
<tbody>${matches.map((m) => html`<tr><td><a href="/dlq/${m.seq}" aria-label="entry ${m.seq}">${m.seq}</a></td><td>${m.stage}</td><td>${m.connector ?? '–'}</td><td>${m.failureClass}</td><td>${m.code}</td>
<td class="num">${m.attempts}</td><td class="num">${m.replays}</td><td class="num">${age(Date.now() - Date.parse(m.deadLetteredAt))}</td><td>${m.reason.slice(0, 120)}</td></tr>`)}</tbody>
</table>
<form method="post" action="/dlq/action" class="actions" aria-label="Act on the matching entries">
${csrfField(csrf)}${filterFields(f)}<input type="hidden" name="step" value="count">
<p>First a dry run counts what would be touched; nothing changes until you confirm.</p>
<button type="submit" name="action" value="replay">Replay matching… (dry run first)</button>
<button type="submit" name="action" value="discard" class="danger">Discard matching… (dry run first)</button>
</form>` : ''}`;
}

/** The confirmation after a dry run: exactly these sequences, counted. */
export function dlqConfirmPage(action: 'replay' | 'discard', f: DlqFilter, matches: DlqMatch[], csrf: string): Html {
  return html`<p role="status" id="dry-run">Dry run: <strong>${matches.length}</strong> entr${matches.length === 1 ? 'y' : 'ies'} would be ${action === 'replay' ? 'replayed' : 'discarded'}. Nothing has changed yet.</p>
${matches.length ? html`<ul>${matches.slice(0, 50).map((m) => html`<li><a href="/dlq/${m.seq}">${m.seq}</a> ${m.stage}/${m.connector ?? '-'} ${m.code}: ${m.reason.slice(0, 80)}</li>`)}</ul>
<form method="post" action="/dlq/action">
${csrfField(csrf)}${filterFields(f)}<input type="hidden" name="step" value="do"><input type="hidden" name="action" value="${action}">
${matches.map((m) => html`<input type="hidden" name="seq" value="${m.seq}">`)}
<button type="submit"${action === 'discard' ? html` class="danger"` : ''}>${action === 'replay' ? 'Replay' : 'Discard'} these ${matches.length}</button>
<a href="/dlq">Cancel</a>
</form>` : html`<p><a href="/dlq">Back to the dead letters</a></p>`}`;
}

export function dlqEntryPage(e: ShownDeadLetter, csrf: string): Html {
  return html`<dl class="facts">
<dt>reason</dt><dd>${e.reason}</dd>
<dt>code</dt><dd>${e.code}</dd><dt>failure class</dt><dd>${e.failureClass}</dd>
<dt>stage / connector</dt><dd>${e.stage} / ${e.connector ?? '–'}</dd>
<dt>attempts</dt><dd>${e.attempts}</dd><dt>replays</dt><dd>${e.replays ?? 0}</dd>
<dt>dead-lettered</dt><dd>${time(e.deadLetteredAt)} UTC</dd>
<dt>correlation</dt><dd>${e.correlationId ? html`<a href="/trace?kind=correlation&amp;q=${encodeURIComponent(e.correlationId)}">${e.correlationId}</a>` : '–'}</dd>
<dt>original</dt><dd>${e.original.stream} #${e.original.seq} on <code>${e.original.subject}</code></dd>
</dl>
<h2>Attempts</h2>
<table><thead><tr><th scope="col">attempt</th><th scope="col">at</th><th scope="col">class</th><th scope="col">status</th><th scope="col">code</th><th scope="col">took</th><th scope="col">then waited</th><th scope="col">what happened</th></tr></thead>
<tbody>${e.history.map((a) => html`<tr><td class="num">${a.attempt}</td><td>${time(a.at)}</td><td>${a.failureClass}</td><td class="num">${a.status ?? '–'}</td><td>${a.code ?? ''}</td>
<td class="num">${a.durationMs === undefined ? '–' : `${a.durationMs} ms`}</td><td class="num">${a.delayMs === undefined ? '–' : `${a.delayMs} ms`}</td><td>${a.message ?? ''}</td></tr>`)}</tbody></table>
<h2>Payload <small>(personal fields masked, secrets removed)</small></h2>
<pre tabindex="0" aria-label="payload">${JSON.stringify(e.original.data, null, 2)}</pre>
<h2>Headers</h2>
<pre tabindex="0" aria-label="headers">${JSON.stringify(e.original.headers, null, 2)}</pre>
<form method="post" action="/dlq/action" class="actions" aria-label="Act on this entry">
${csrfField(csrf)}<input type="hidden" name="step" value="count"><input type="hidden" name="seq" value="${e.seq}">
<button type="submit" name="action" value="replay">Replay… (dry run first)</button>
<button type="submit" name="action" value="discard" class="danger">Discard… (dry run first)</button>
</form>`;
}

const diff = (r: RunReport) => Object.entries(r.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';

export function reconcilePage(runs: RunReport[], connectors: string[], csrf: string): Html {
  return html`<form method="post" action="/reconcile/run" class="inline" aria-label="Start a reconcile run">
${csrfField(csrf)}
<label for="run-connector">Connector</label>
<select id="run-connector" name="connector" required>${connectors.map((c) => html`<option value="${c}">${c}</option>`)}</select>
<input type="checkbox" id="dry" name="dryRun" value="1" checked><label for="dry">dry run (compare and report only)</label>
<button type="submit">Start a run</button>
</form>
<h2>Runs</h2>
${runs.length ? html`<table><thead><tr><th scope="col">run</th><th scope="col">connector</th><th scope="col">status</th><th scope="col">started</th><th scope="col">checked</th><th scope="col">listed</th><th scope="col">differences</th><th scope="col">repaired</th><th scope="col">flagged</th></tr></thead>
<tbody>${runs.map((r) => html`<tr><td><a href="/reconcile/${encodeURIComponent(r.runId)}">${r.runId}</a></td><td>${r.connector}</td><td>${r.status}${r.dryRun ? ' (dry run)' : ''}</td><td>${time(r.startedAt)}</td>
<td class="num">${r.checked}</td><td class="num">${r.listed}</td><td>${diff(r)}</td><td class="num">${r.repaired}</td><td class="num">${r.flagged}</td></tr>`)}</tbody></table>`
    : html`<p>No reconcile runs yet.</p>`}`;
}

const show = (v: unknown) => (v === undefined ? '–' : typeof v === 'string' ? v : JSON.stringify(v));

export function reconcileRunPage(run: RunReport, items: ReportItem[], csrf: string): Html {
  return html`<dl class="facts"><dt>connector</dt><dd>${run.connector}</dd><dt>status</dt><dd>${run.status}${run.dryRun ? ' (dry run)' : ''}${run.error ? `: ${run.error}` : ''}</dd>
<dt>started</dt><dd>${time(run.startedAt)}</dd><dt>ended</dt><dd>${time(run.endedAt)}</dd><dt>checked / listed</dt><dd>${run.checked} / ${run.listed}</dd>
<dt>differences</dt><dd>${diff(run)}</dd><dt>repaired / flagged</dt><dd>${run.repaired} / ${run.flagged}</dd></dl>
<h2>Items</h2>
${items.length ? html`<table><thead><tr><th scope="col">item</th><th scope="col">kind</th><th scope="col">record</th><th scope="col">versions (source / target)</th><th scope="col">fields</th><th scope="col">decision</th></tr></thead>
<tbody>${items.map((i, n) => html`<tr><td>${i.id}</td><td>${i.kind}</td><td>${i.target.type} ${i.target.id}</td><td>${i.sourceVersion ?? '–'} / ${i.targetVersion ?? '–'}</td>
<td>${i.fields.map((f) => `${f.field}: ${show(f.source)} → ${show(f.target)}`).join('; ') || '–'}</td>
<td>${i.resolution ? `settled: ${i.resolution.as} (${i.resolution.by})` : i.decision === 'flagged' ? html`flagged
<form method="post" action="/reconcile/resolve" class="inline">${csrfField(csrf)}<input type="hidden" name="item" value="${i.id}"><input type="hidden" name="run" value="${run.runId}">
<label for="as-${n}">settle as</label><select id="as-${n}" name="as"><option value="source">source (send it to the target)</option><option value="target">target is right</option><option value="ignore">ignore</option></select>
<button type="submit">Resolve</button></form>` : i.decision}</td></tr>`)}</tbody></table>` : html`<p>No differences.</p>`}`;
}

export function connectorsPage(states: { connector: string; paused: boolean; reason?: string; by?: string; at?: string; pending: number; ackPending: number; circuit?: { state: string; at: string; by: string } }[], csrf: string): Html {
  return states.length ? html`<table><thead><tr><th scope="col">connector</th><th scope="col">state</th><th scope="col">why</th><th scope="col">circuit</th><th scope="col">queue</th><th scope="col">in flight</th><th scope="col">action</th></tr></thead>
<tbody>${states.map((s, n) => html`<tr data-connector="${s.connector}"><th scope="row">${s.connector}</th><td><span class="state state-${s.paused ? 'paused' : 'running'}">${s.paused ? 'paused' : 'running'}</span></td>
<td>${s.reason ?? ''}${s.by ? html`<br><small>${s.by}, ${time(s.at)}</small>` : ''}</td><td>${s.circuit ? `${s.circuit.state} since ${time(s.circuit.at)}` : 'closed'}</td><td class="num">${s.pending}</td><td class="num">${s.ackPending}</td>
<td><form method="post" action="/connectors/${s.paused ? 'resume' : 'pause'}" class="inline">${csrfField(csrf)}<input type="hidden" name="connector" value="${s.connector}">
<label for="reason-${n}">Reason</label><input id="reason-${n}" name="reason" ${s.paused ? '' : html`required`} placeholder="${s.paused ? 'optional' : 'why (shown to everyone)'}">
<button type="submit">${s.paused ? 'Resume' : 'Pause'} ${s.connector}</button></form></td></tr>`)}</tbody></table>`
    : html`<p>No deliver consumers yet: is deliver running?</p>`;
}

export function loginPage(): Html {
  return html`<p>Reading and acting need an operator token (one of <code>CONSOLE_TOKENS</code>; <code>npm start</code> prints the demo one).</p>
<form method="post" action="/login" class="login">
<label for="token">Operator token</label>
<input id="token" name="token" type="password" required autocomplete="current-password">
<button type="submit">Sign in</button>
</form>`;
}

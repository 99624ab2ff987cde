import { formatAge, formatBytes } from '@bus/operations';

/** HTML that is already escaped (made only by {@link html}). */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function part(v: unknown): string {
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(part).join('');
  if (v === undefined || v === null || v === false) return '';
  return escapeHtml(String(v));
}

/** A template tag that escapes every value (arrays joined, Html kept): the only way pages are built. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Ages and sizes as the CLI prints them (an unknown age as –). */
export const age = (ms: number | undefined): string => (ms === undefined ? '–' : formatAge(ms));
export const bytes = formatBytes;

export interface PageOptions {
  title: string;
  /** The nav entry shown as current. */
  current?: string;
  operator?: string;
  csrf?: string;
  /** A result line after an action (role=status). */
  notice?: string;
  error?: string;
}

const NAV = [['/', 'Overview'], ['/trace', 'Trace'], ['/dlq', 'Dead letters'], ['/reconcile', 'Reconcile'], ['/connectors', 'Connectors']] as const;

/** The page around every view: landmarks, skip link, nav with aria-current, one h1. */
export function page(o: PageOptions, body: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · bus console</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<p class="brand">integration bus · console</p>
${o.operator ? html`<nav aria-label="Main"><ul>${NAV.map(([href, label]) => html`<li><a href="${href}"${o.current === href ? html` aria-current="page"` : ''}>${label}</a></li>`)}</ul></nav>
<form method="post" action="/logout" class="who"><span>signed in as <strong>${o.operator}</strong></span><input type="hidden" name="csrf" value="${o.csrf}"><button type="submit">Sign out</button></form>` : ''}
</header>
<main id="main" tabindex="-1">
<h1>${o.title}</h1>
${o.notice ? html`<p class="notice" role="status">${o.notice}</p>` : ''}
${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
${body}
</main>
</body>
</html>`.value;
}

/** A hidden CSRF field for an action form. */
export const csrfField = (csrf: string) => html`<input type="hidden" name="csrf" value="${csrf}">`;

// The alert rules and the dashboard name only metrics the services really export: the registries
// are made the way the services make them (createMetrics + each service's own), not listed by hand.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { createDeliverMetrics } from '@bus/delivery';
import { createIntakeMetrics } from '@bus/intake';
import { createMetrics } from '@bus/observability';
import { createProjectionMetrics } from '@bus/projection';
import { createReconcileMetrics } from '@bus/reconcile';
import { createTransformMetrics } from '@bus/transformer';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Every series name the four services expose: histograms as _bucket, _sum and _count. */
async function exported(): Promise<Set<string>> {
  const names = new Set<string>(['up']); // Prometheus's own, per scrape target
  const services: [string, (r: ReturnType<typeof createMetrics>['registry']) => void][] = [
    ['ingest', (r) => createIntakeMetrics(r)],
    ['transform', (r) => createTransformMetrics(r)],
    ['deliver', (r) => createDeliverMetrics(r)],
    [
      'reconcile',
      (r) => {
        createProjectionMetrics(r);
        createReconcileMetrics(r);
        createIntakeMetrics(r);
      },
    ],
  ];
  for (const [service, own] of services) {
    const { registry } = createMetrics(service);
    own(registry);
    for (const m of await registry.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    }
  }
  return names;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan']);

/** The metric names a PromQL expression reads (not functions, keywords, labels or durations). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/\[[^\]]*\]/g, ''); // ranges and subqueries
  const out: string[] = [];
  for (const m of bare.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1]!.toLowerCase()) || /^\d/.test(m[1]!)) continue; // a function call, a keyword
    out.push(m[1]!);
  }
  return out;
}

function rulesExprs(): { where: string; expr: string }[] {
  const doc = parse(readFileSync(`${root}ops/prometheus/rules.yml`, 'utf8')) as {
    groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
  };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `rules.yml ${r.alert ?? r.record}`, expr: String(r.expr) })));
}
function dashboardExprs(): { where: string; expr: string }[] {
  const doc = JSON.parse(readFileSync(`${root}ops/grafana/integration-bus.json`, 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  return doc.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `dashboard "${p.title}"`, expr: t.expr })));
}

describe('ops/: Prometheus rules and the Grafana dashboard', () => {
  it('the extractor finds metric names and skips functions, keywords, labels and ranges', () => {
    assert.deepEqual(metricNames('max by (stage, connector) (bus_dlq_messages{stage="x"}) > 0 and max by (stage) (delta(bus_dlq_messages[15m])) > 0'), [
      'bus_dlq_messages',
      'bus_dlq_messages',
    ]);
    assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le) (rate(made_up_seconds_bucket[5m]))) - time()'), ['made_up_seconds_bucket']);
  });

  it("every metric the rules and the dashboard use exists in the services' registries", async () => {
    const names = await exported();
    const uses = [...rulesExprs(), ...dashboardExprs()];
    assert.ok(rulesExprs().length >= 10, 'the rules file has its alerts');
    assert.ok(dashboardExprs().length >= 10, 'the dashboard has its panels');
    const unknown = uses.flatMap(({ where, expr }) =>
      metricNames(expr)
        .filter((n) => !names.has(n))
        .map((n) => `${where}: ${n}`),
    );
    assert.deepEqual(unknown, []);
    // and the check can fail: a name no service exports is reported
    assert.deepEqual(
      metricNames('rate(bus_dlq_messagez[5m])').filter((n) => !names.has(n)),
      ['bus_dlq_messagez'],
    );
  });

  it('the rules cover what the issue asks to alert on, and cluster-wide gauges are aggregated with max, never sum', () => {
    const rules = rulesExprs();
    const text = rules.map((r) => r.expr).join('\n');
    for (const metric of [
      'bus_dlq_messages',
      'bus_consumer_oldest_pending_age_seconds',
      'deliver_circuit_state',
      'deliver_connector_paused',
      'deliver_token_expiry_timestamp_seconds',
      'up',
    ]) {
      assert.ok(text.includes(metric), `no rule reads ${metric}`);
    }
    for (const { where, expr } of [...rules, ...dashboardExprs()]) {
      assert.doesNotMatch(expr, /sum[^()]*\([^()]*bus_(dlq|consumer)_/, `${where} sums a cluster-wide gauge`);
    }
  });
});

// The Grafana dashboard the chart ships (charts/switchyard/dashboards/switchyard.json): its
// structure, and every metric its queries read against the metrics the processes register, so a
// renamed metric fails here rather than as an empty panel.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Histogram, Summary } from 'prom-client';
import { operatorMetrics } from '../../operator/src/metrics.js';
import { forwarderMetrics } from '../../runtime/src/forward/metrics.js';
import { ingestionMetrics } from '../../runtime/src/ingestion/metrics.js';
import { createRegistry } from '../../runtime/src/metrics.js';
import { CHART_DIR } from './helm.js';

interface Target {
  refId: string;
  expr: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: Array<{ name: string; type: string; query: unknown; definition?: string }> };
  panels: Panel[];
}

const PROMETHEUS = { type: 'prometheus', uid: '${datasource}' };
/** PromQL words that look like metric names but are operators or modifiers. */
const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);
/** Grafana's own variables a query may use. */
const GRAFANA_VARIABLES = new Set(['__rate_interval', '__interval', '__range', '__range_s']);

/**
 * The metric names a PromQL expression selects: identifiers left once strings, label matchers,
 * ranges and label lists (`by (…)`, `on (…)`) are removed, which are not functions, aggregations
 * (followed by `(`), keywords, numbers or Grafana variables.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    if (PROMQL_KEYWORDS.has(m[0])) continue;
    if (bare.slice(m.index! + m[0].length).trimStart().startsWith('(')) continue;
    names.push(m[0]);
  }
  return names;
}

/** Every panel, rows' nested panels included. */
function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/**
 * The series names the processes expose, from prom-client registries filled the way the ingestion
 * (ingestionMetrics), each forwarder (forwarderMetrics) and the operator (operatorMetrics) fill
 * theirs: counters and gauges by name, histograms as name_bucket, name_sum and name_count.
 * Returns the series names and the metric names.
 */
function exposedSeries(): { series: Set<string>; metrics: string[] } {
  const registry = createRegistry({ defaultMetrics: false });
  ingestionMetrics(registry);
  forwarderMetrics(registry);
  operatorMetrics(registry, () => 0);
  const metrics = registry.getMetricsAsArray();
  const series = new Set<string>();
  for (const m of metrics) {
    if (m instanceof Histogram) for (const suffix of ['_bucket', '_sum', '_count']) series.add(`${m.name}${suffix}`);
    else if (m instanceof Summary) for (const suffix of ['', '_sum', '_count']) series.add(`${m.name}${suffix}`);
    else series.add(m.name);
  }
  return { series, metrics: metrics.map((m) => m.name) };
}

let dashboard: Dashboard;
let panels: Panel[];
let queries: Array<{ panel: string; expr: string }>;

beforeAll(async () => {
  dashboard = JSON.parse(await readFile(path.join(CHART_DIR, 'dashboards/switchyard.json'), 'utf8')) as Dashboard;
  panels = allPanels(dashboard.panels);
  queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
});

test('metricNames finds the selected metrics of an expression, not functions, labels or variables', () => {
  expect(metricNames('histogram_quantile(0.99, sum by (integration, le) (rate(a_seconds_bucket{integration=~"${namespace}/.*", x="b c"}[$__rate_interval])))')).toEqual(['a_seconds_bucket']);
  expect(metricNames('sum(up) / on (instance) group_left (pod) b_total offset 5m and c unless d > bool 1e3')).toEqual(['up', 'b_total', 'c', 'd']);
});

test('the dashboard is a Grafana dashboard with a Prometheus data source variable and Integration filters', () => {
  expect(dashboard).toMatchObject({ uid: 'switchyard', title: 'Switchyard' });
  expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
  const variables = new Map(dashboard.templating.list.map((v) => [v.name, v]));
  expect(variables.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
  for (const name of ['namespace', 'integration']) {
    expect(variables.get(name)?.type).toBe('query');
    expect(variables.get(name)?.definition).toMatch(/^label_values\(/);
  }
  expect(panels.filter((p) => p.type === 'row').map((p) => p.title)).toEqual(['Ingestion', 'Delivery', 'Operator']);
});

test('every panel has a unique id and a title, and panels do not overlap', () => {
  const ids = panels.map((p) => p.id);
  expect(ids.every((id) => Number.isInteger(id))).toBe(true);
  expect(new Set(ids).size).toBe(ids.length);
  for (const p of panels) expect(p.title.trim()).not.toBe('');
  const overlapping: string[] = [];
  for (const [i, a] of panels.entries()) {
    for (const b of panels.slice(i + 1)) {
      const apart = a.gridPos.x + a.gridPos.w <= b.gridPos.x || b.gridPos.x + b.gridPos.w <= a.gridPos.x || a.gridPos.y + a.gridPos.h <= b.gridPos.y || b.gridPos.y + b.gridPos.h <= a.gridPos.y;
      if (!apart) overlapping.push(`${a.title} / ${b.title}`);
    }
    expect(a.gridPos.x + a.gridPos.w).toBeLessThanOrEqual(24);
  }
  expect(overlapping).toEqual([]);
});

test('every query reads the data source variable and uses only defined variables', () => {
  const defined = new Set(dashboard.templating.list.map((v) => v.name));
  expect(queries.length).toBeGreaterThan(0);
  for (const p of panels.filter((panel) => panel.type !== 'row')) {
    expect(p.datasource).toEqual(PROMETHEUS);
    for (const t of p.targets ?? []) {
      expect(t.datasource).toEqual(PROMETHEUS);
      for (const m of t.expr.matchAll(/\$\{?(\w+)/g)) if (!GRAFANA_VARIABLES.has(m[1]!)) expect(defined).toContain(m[1]);
    }
  }
});

test('every metric a query reads is one the ingestion, forwarders or operator register', () => {
  const { series } = exposedSeries();
  const unknown = queries.flatMap(({ panel, expr }) => metricNames(expr).filter((name) => !series.has(name)).map((name) => `${panel}: ${name}`));
  expect(unknown).toEqual([]);
  // The variables' queries too: a renamed metric would leave the filters empty.
  for (const v of dashboard.templating.list.filter((t) => t.type === 'query')) {
    const selected = metricNames(v.definition!.replace(/^label_values\((.*),\s*\w+\)$/, '$1'));
    expect(selected.length).toBe(1);
    expect(series).toContain(selected[0]);
  }
});

test('every metric the processes register is on the dashboard', () => {
  const { metrics } = exposedSeries();
  const used = new Set(queries.flatMap(({ expr }) => metricNames(expr)).map((name) => name.replace(/_(bucket|sum|count)$/, '')));
  expect(metrics.filter((name) => !used.has(name))).toEqual([]);
});

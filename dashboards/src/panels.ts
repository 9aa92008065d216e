/**
 * Small builders for Grafana dashboard JSON, typed with @grafana/schema so a misspelt field or a
 * wrong shape fails `npm run build`. Every query goes to the dashboard's $datasource variable,
 * and every panel is placed on Grafana's 24-column grid by the dashboard that uses it.
 */
import type { Dashboard, DataSourceRef, Panel, RowPanel, ThresholdsConfig, ThresholdsMode, VariableModel } from '@grafana/schema';

export const DATASOURCE: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

export interface Query {
  expr: string;
  legend?: string;
  /** Instant query (tables, stats); range otherwise. */
  instant?: boolean;
  format?: 'time_series' | 'table';
}

export interface PanelSpec {
  title: string;
  description: string;
  queries: Query[];
  unit?: string;
  /** Grid size; the dashboard lays panels out left to right, wrapping at 24. */
  w: number;
  h: number;
  stack?: boolean;
  thresholds?: Array<{ value: number | null; color: string }>;
  min?: number;
  max?: number;
}

function targets(qs: Query[]): Panel['targets'] {
  return qs.map((q, i) => ({
    refId: String.fromCharCode(65 + i),
    datasource: DATASOURCE,
    expr: q.expr,
    legendFormat: q.legend ?? '__auto',
    range: !q.instant,
    instant: q.instant ?? false,
    format: q.format ?? 'time_series',
  }));
}

function thresholdConfig(s: PanelSpec): ThresholdsConfig {
  // The schema's enum is a runtime object; its string value keeps the generator free of the package at run time.
  return { mode: 'absolute' as ThresholdsMode, steps: s.thresholds ?? [{ value: null, color: 'green' }] };
}

export function timeseries(s: PanelSpec): Panel {
  return {
    type: 'timeseries',
    title: s.title,
    description: s.description,
    datasource: DATASOURCE,
    targets: targets(s.queries),
    gridPos: { x: 0, y: 0, w: s.w, h: s.h },
    fieldConfig: {
      defaults: {
        unit: s.unit ?? 'short',
        min: s.min,
        max: s.max,
        thresholds: thresholdConfig(s),
        custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: s.stack ? 60 : 10, stacking: { mode: s.stack ? 'normal' : 'none', group: 'A' }, showPoints: 'never' },
      },
      overrides: [],
    },
    options: { legend: { displayMode: 'table', placement: 'right', showLegend: true, calcs: ['lastNotNull', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  };
}

export function stat(s: PanelSpec): Panel {
  return {
    type: 'stat',
    title: s.title,
    description: s.description,
    datasource: DATASOURCE,
    targets: targets(s.queries),
    gridPos: { x: 0, y: 0, w: s.w, h: s.h },
    fieldConfig: { defaults: { unit: s.unit ?? 'short', min: s.min, max: s.max, thresholds: thresholdConfig(s) }, overrides: [] },
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'area', textMode: 'auto' },
  };
}

/** A table of one instant query: each series a row, its labels the columns. */
export function table(s: PanelSpec, hide: string[], order: string[]): Panel {
  return {
    type: 'table',
    title: s.title,
    description: s.description,
    datasource: DATASOURCE,
    targets: targets(s.queries.map((q) => ({ ...q, instant: true, format: 'table' }))),
    gridPos: { x: 0, y: 0, w: s.w, h: s.h },
    fieldConfig: { defaults: { unit: s.unit ?? 'short', thresholds: thresholdConfig(s) }, overrides: [] },
    options: { showHeader: true, sortBy: [{ displayName: 'Value', desc: true }] },
    transformations: [
      {
        id: 'organize',
        options: {
          excludeByName: Object.fromEntries(hide.map((h) => [h, true])),
          indexByName: Object.fromEntries(order.map((name, i) => [name, i])),
          renameByName: { Value: 'bytes' },
        },
      },
    ],
  };
}

export function row(title: string): RowPanel {
  return { type: 'row', id: 0, title, collapsed: false, panels: [], gridPos: { x: 0, y: 0, w: 24, h: 1 } }; // id set by layout()
}

/** Numbers the panels and places them left to right, top to bottom; rows take a line of their own. */
export function layout(items: Array<Panel | RowPanel>): Array<Panel | RowPanel> {
  let x = 0;
  let y = 0;
  let lineHeight = 0;
  return items.map((p, i) => {
    const pos = p.gridPos ?? { x: 0, y: 0, w: 24, h: 8 };
    if (p.type === 'row' || x + pos.w > 24) {
      y += lineHeight;
      x = 0;
      lineHeight = 0;
    }
    const placed = { ...p, id: i + 1, gridPos: { ...pos, x, y } };
    x += pos.w;
    lineHeight = Math.max(lineHeight, pos.h);
    if (p.type === 'row') {
      y += pos.h;
      x = 0;
      lineHeight = 0;
    }
    return placed;
  });
}

export function datasourceVariable(): VariableModel {
  return { type: 'datasource', name: 'datasource', label: 'Data source', query: 'prometheus', hide: 0, refresh: 1, options: [] };
}

export function queryVariable(name: string, label: string, query: string): VariableModel {
  return {
    type: 'query',
    name,
    label,
    datasource: DATASOURCE,
    query: { query, refId: `${name}-variable` },
    refresh: 2,
    includeAll: true,
    allValue: '.*',
    multi: true,
    current: { text: 'All', value: '$__all' },
    sort: 3,
    hide: 0,
    options: [],
  };
}

export function dashboard(uid: string, title: string, description: string, variables: VariableModel[], panels: Array<Panel | RowPanel>): Dashboard {
  return {
    uid,
    title,
    description,
    tags: ['ctflow', 'conntrack'],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    templating: { list: variables },
    annotations: { list: [] },
    links: [{ title: 'ctflow', type: 'dashboards', tags: ['ctflow'], asDropdown: true, icon: 'external link', includeVars: true, keepTime: true, targetBlank: false, tooltip: '', url: '' }],
    panels: layout(panels),
  };
}

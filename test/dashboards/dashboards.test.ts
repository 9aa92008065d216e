/**
 * dashboards/: the committed files are what the generator makes; the Grafana dashboards hold
 * together (ids, grid, data source, queries); every alert has its summary, description and a
 * runbook section; and Debian's promtool accepts the rules and passes their unit tests.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Panel, RowPanel } from '@grafana/schema';
import { parse } from 'yaml';
import { generatedFiles } from '../../dashboards/src/generate';
import { ALERTS } from '../../dashboards/src/rules';
import { dashboards } from '../prometheus/queries';
import { promtool } from '../prometheus/tools';

const ROOT = join(__dirname, '..', '..');
const DIR = join(ROOT, 'dashboards');

test.each(Object.keys(generatedFiles()))('dashboards/%s is up to date with the generator (npm run dashboards)', (rel) => {
  expect(readFileSync(join(DIR, rel), 'utf8')).toBe(generatedFiles()[rel]);
});

describe.each(dashboards().map((d) => [d.title, d]))('%s', (_title, d) => {
  const panels = (d.panels ?? []) as Array<Panel | RowPanel>;
  const graphs = panels.filter((p): p is Panel => p.type !== 'row');

  test('has a uid, unique panel ids, and panels inside the 24-column grid without overlap', () => {
    expect(d.uid).toMatch(/^ctflow-/);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const cells = new Set<string>();
    for (const p of panels) {
      const g = p.gridPos!;
      expect(g.x + g.w).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`)).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
  });

  test('every panel queries the $datasource variable, with a title and a description', () => {
    expect(d.templating?.list?.[0]).toMatchObject({ type: 'datasource', name: 'datasource', query: 'prometheus' });
    for (const p of graphs) {
      expect(p.title).toBeTruthy();
      expect(p.description).toBeTruthy();
      expect(p.targets?.length).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        expect(t.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
        expect(String(t.expr)).toMatch(/ctflow_|process_|nodejs_|job_instance/);
      }
    }
  });
});

test('the dashboards show what the issue asks for', () => {
  const titles = dashboards().flatMap((d) => ((d.panels ?? []) as Panel[]).map((p) => p.title));
  for (const t of ['Entries against the limit', 'Entries by state', 'Packets by ctstate', 'INVALID by reason and zone', 'State transitions', 'Top flows by bytes', 'Consumer lag', 'Messages and packets'])
    expect(titles).toContain(t);
});

test('every alert has a summary, a description, a severity and a runbook section in docs/alerts.md', () => {
  const runbooks = readFileSync(join(ROOT, 'docs', 'alerts.md'), 'utf8');
  const rules = parse(readFileSync(join(DIR, 'prometheus', 'ctflow-rules.yaml'), 'utf8')) as { groups: Array<{ rules: Array<Record<string, any>> }> };
  const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);
  expect(alerts.map((a) => a.alert)).toEqual(ALERTS.map((a) => a.alert));
  for (const a of alerts) {
    expect(a.annotations.summary).toBeTruthy();
    expect(a.annotations.description).toBeTruthy();
    expect(['warning', 'critical']).toContain(a.labels.severity);
    const anchor = a.annotations.runbook_url.split('#')[1];
    expect(anchor).toBe(a.alert.toLowerCase());
    // GitHub-style anchors: the heading "## CtflowInvalidSpike" is #ctflowinvalidspike.
    expect(runbooks).toMatch(new RegExp(`^## ${a.alert}$`, 'm'));
  }
});

test('promtool check rules accepts the rule file', () => {
  const r = promtool(['check', 'rules', join(DIR, 'prometheus', 'ctflow-rules.yaml')]);
  expect(r.output).toMatch(/SUCCESS: 19 rules found/);
  expect(r.status).toBe(0);
});

test('promtool test rules: each alert fires on its incident and stays silent on steady traffic and quiet zones', () => {
  const r = promtool(['test', 'rules', join(DIR, 'prometheus', 'ctflow-rules.test.yaml')]);
  expect(r.output).toMatch(/SUCCESS/);
  expect(r.status).toBe(0);
});

test('every alert is exercised by the rule tests', () => {
  const tests = readFileSync(join(DIR, 'prometheus', 'ctflow-rules.test.yaml'), 'utf8');
  for (const a of ALERTS) expect(tests).toMatch(new RegExp(`alertname: ${a.alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`));
});

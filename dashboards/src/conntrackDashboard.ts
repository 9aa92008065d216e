/**
 * "ctflow / conntrack": what the tables hold and what the traffic does to them. Occupancy
 * against the limit first (the thing that pages), then states, ctstates, INVALID by reason and
 * zone against its baseline, transitions, and the top flows.
 */
import type { Dashboard } from '@grafana/schema';
import { dashboard, datasourceVariable, queryVariable, row, stat, table, timeseries } from './panels';

const I = 'instance=~"$instance"';
const IZ = `instance=~"$instance", zone=~"$zone"`;

export function conntrackDashboard(): Dashboard {
  return dashboard(
    'ctflow-conntrack',
    'ctflow / conntrack',
    "ctflow's conntrack tables and the traffic through them, from ctflow_* metrics.",
    [datasourceVariable(), queryVariable('instance', 'Instance', 'label_values(ctflow_build_info, instance)'), queryVariable('zone', 'Zone', `label_values(ctflow_packets_total{${I}}, zone)`)],
    [
      row('Table'),
      stat({
        title: 'Table occupancy',
        description: 'Entries over nf_conntrack_max for the fullest table (warning at 75%, critical at 90%, as the alerts).',
        queries: [{ expr: `max(job_instance_partition:ctflow_nf_conntrack_entries:ratio{${I}})`, instant: true }],
        unit: 'percentunit',
        min: 0,
        max: 1,
        thresholds: [{ value: null, color: 'green' }, { value: 0.75, color: 'orange' }, { value: 0.9, color: 'red' }],
        w: 4,
        h: 8,
      }),
      timeseries({
        title: 'Entries against the limit',
        description: 'Table entries, the limit, and the entries the current NEW rate keeps alive for at least their unreplied timeout (the exhaustion prediction).',
        queries: [
          { expr: `sum by (instance) (ctflow_nf_conntrack_entries{${IZ}})`, legend: 'entries {{instance}}' },
          { expr: `sum by (instance) (ctflow_nf_conntrack_entries_limit{${I}})`, legend: 'limit {{instance}}' },
          { expr: `job_instance:ctflow_nf_conntrack_entries:predicted_from_new_rate{${I}}`, legend: 'predicted by NEW rate {{instance}}' },
        ],
        w: 10,
        h: 8,
      }),
      timeseries({
        title: 'Entries by state',
        description: 'TCP/SCTP entries by protocol state; others UNREPLIED, REPLIED or ASSURED.',
        queries: [{ expr: `sum by (proto, state) (ctflow_nf_conntrack_entries{${IZ}})`, legend: '{{proto}} {{state}}' }],
        stack: true,
        w: 10,
        h: 8,
      }),
      timeseries({
        title: 'Evictions and drops',
        description: 'conntrack -S early_drop, drop and insert_failed per second: the table was full.',
        queries: [
          { expr: `sum by (instance) (rate(ctflow_nf_conntrack_stat_early_drop_total{${I}}[$__rate_interval]))`, legend: 'early_drop {{instance}}' },
          { expr: `sum by (instance) (rate(ctflow_nf_conntrack_stat_drop_total{${I}}[$__rate_interval]))`, legend: 'drop {{instance}}' },
          { expr: `sum by (instance) (rate(ctflow_nf_conntrack_stat_insert_failed_total{${I}}[$__rate_interval]))`, legend: 'insert_failed {{instance}}' },
        ],
        unit: 'ops',
        w: 8,
        h: 7,
      }),
      timeseries({
        title: 'Each table against its limit',
        description:
          'Per partition (each has its own table and nf_conntrack_max): entries, and the entries its NEW rate keeps alive for their unreplied timeout (the exhaustion alert, at 100%), as shares of its limit.',
        queries: [
          { expr: `job_instance_partition:ctflow_nf_conntrack_entries:ratio{${I}}`, legend: 'entries {{instance}} p{{partition}}' },
          {
            expr: `job_instance_partition:ctflow_nf_conntrack_entries:predicted_from_new_rate{${I}}\n  / on (job, instance, partition)\nctflow_nf_conntrack_entries_limit{${I}}`,
            legend: 'predicted {{instance}} p{{partition}}',
          },
        ],
        unit: 'percentunit',
        min: 0,
        thresholds: [{ value: null, color: 'green' }, { value: 0.75, color: 'orange' }, { value: 1, color: 'red' }],
        w: 8,
        h: 7,
      }),
      timeseries({
        title: 'Flows created and destroyed',
        description: 'NEW events per second by protocol, and DESTROY events (below zero) by reason.',
        queries: [
          { expr: `sum by (proto) (rate(ctflow_flows_created_total{${IZ}}[$__rate_interval]))`, legend: 'created {{proto}}' },
          { expr: `-sum by (reason) (rate(ctflow_flows_destroyed_total{${IZ}}[$__rate_interval]))`, legend: 'destroyed {{reason}}' },
        ],
        unit: 'ops',
        w: 8,
        h: 7,
      }),
      row('Traffic'),
      timeseries({
        title: 'Packets by ctstate',
        description: 'Packets per second by the ctstate conntrack gave them.',
        queries: [{ expr: `sum by (ctstate) (rate(ctflow_packets_total{${IZ}}[$__rate_interval]))`, legend: '{{ctstate}}' }],
        unit: 'pps',
        stack: true,
        w: 12,
        h: 8,
      }),
      timeseries({
        title: 'Bytes by protocol',
        description: 'IP bytes per second by protocol.',
        queries: [{ expr: `sum by (proto) (rate(ctflow_bytes_total{${IZ}}[$__rate_interval]))`, legend: '{{proto}}' }],
        unit: 'Bps',
        stack: true,
        w: 12,
        h: 8,
      }),
      timeseries({
        title: 'INVALID by reason and zone',
        description: 'INVALID packets per second by zone and the reason conntrack refused them.',
        queries: [{ expr: `sum by (zone, reason) (rate(ctflow_invalid_packets_total{${IZ}}[$__rate_interval]))`, legend: 'zone {{zone}} {{reason}}' }],
        unit: 'pps',
        w: 12,
        h: 8,
      }),
      timeseries({
        title: 'INVALID share against its baseline',
        description: "Each zone and reason's share of the zone's packets, and its average over the last day: the INVALID-spike alert compares the two.",
        queries: [
          { expr: `job_instance_zone_reason:ctflow_invalid_packets:ratio_rate5m{${IZ}}`, legend: 'zone {{zone}} {{reason}}' },
          { expr: `job_instance_zone_reason:ctflow_invalid_packets:ratio_rate5m:avg1d{${IZ}}`, legend: 'baseline zone {{zone}} {{reason}}' },
        ],
        unit: 'percentunit',
        w: 12,
        h: 8,
      }),
      timeseries({
        title: 'State transitions',
        description: 'Entries moving between states per second (NONE: created; DESTROYED: removed).',
        queries: [{ expr: `sum by (proto, from, to) (rate(ctflow_state_transitions_total{${I}}[$__rate_interval]))`, legend: '{{proto}} {{from}} → {{to}}' }],
        unit: 'ops',
        w: 24,
        h: 9,
      }),
      row('Flows'),
      table(
        {
          title: 'Top flows by bytes',
          description: 'The largest table entries by bytes in both directions, as last read from the table (ctflow --top-flows sets how many).',
          queries: [{ expr: `topk(20, ctflow_top_flow_bytes{${IZ}})` }],
          unit: 'bytes',
          w: 24,
          h: 10,
        },
        ['Time', '__name__', 'job'],
        ['instance', 'zone', 'proto', 'src', 'sport', 'dst', 'dport', 'state', 'Value'],
      ),
    ],
  );
}

/**
 * ctflow's Prometheus rules as data: recording rules that the alerts and dashboards share, and
 * the alerts, each with the expression that should always have data (its `signal`), so the
 * end-to-end test can tell "no alert because all is well" from "no alert because the query
 * matches nothing". generate.ts writes them to prometheus/ctflow-rules.yaml; docs/alerts.md
 * holds the runbooks the alerts link to.
 */

export interface RecordingRule {
  record: string;
  expr: string;
}

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  severity: 'warning' | 'critical';
  summary: string;
  description: string;
  /** A query the alert is built on that returns data whenever ctflow is scraped. */
  signal: string;
}

/** Below these an INVALID rise does not page: quiet zones swing wildly in share on a handful of packets. */
export const INVALID_SHARE_FLOOR = 0.01;
export const INVALID_RATE_FLOOR = 1;
/** How far above its own baseline the INVALID share must climb. */
export const INVALID_SPIKE_FACTOR = 3;

/**
 * The scrape job ctflow's targets are in. Only the alerts about ctflow being there at all need
 * it (`up` belongs to every target); the rest select by metric name. Change it here and run
 * `npm run dashboards` when your scrape config names the job otherwise.
 */
export const CTFLOW_JOB = 'ctflow';
/** Event time this far behind the wall clock means what ctflow shows is old news. */
export const EVENT_TIME_LAG_SECONDS = 300;

const UP = `up{job="${CTFLOW_JOB}"}`;
const INVALID_RATIO = 'job_instance_zone_reason:ctflow_invalid_packets:ratio_rate5m';
const INVALID_RATE = 'job_instance_zone_reason:ctflow_invalid_packets:rate5m';
const INVALID_BASELINE = 'job_instance_zone_reason:ctflow_invalid_packets:ratio_rate5m:avg1d';
const OCCUPANCY = 'job_instance_partition:ctflow_nf_conntrack_entries:ratio';
const PREDICTED = 'job_instance:ctflow_nf_conntrack_entries:predicted_from_new_rate';
const MEAN_TIMEOUT = 'job_instance:ctflow_conntrack_unreplied_timeout_seconds:avg_weighted_by_new_rate5m';
export const PREDICTED_PER_PARTITION = 'job_instance_partition:ctflow_nf_conntrack_entries:predicted_from_new_rate';

export const RECORDING_RULES: RecordingRule[] = [
  {
    record: 'job_instance_zone:ctflow_packets:rate5m',
    expr: 'sum by (job, instance, zone) (rate(ctflow_packets_total[5m]))',
  },
  {
    record: INVALID_RATE,
    expr: 'sum by (job, instance, zone, reason) (rate(ctflow_invalid_packets_total[5m]))',
  },
  {
    // The share of a zone's packets that one INVALID reason takes.
    record: INVALID_RATIO,
    expr: `${INVALID_RATE}\n  / on (job, instance, zone) group_left\njob_instance_zone:ctflow_packets:rate5m`,
  },
  {
    // Each zone and reason's own normal: its share averaged over the last day.
    record: INVALID_BASELINE,
    expr: `avg_over_time(${INVALID_RATIO}[1d])`,
  },
  {
    // Entries over the limit, per table; an empty table counts as 0 rather than vanishing.
    record: OCCUPANCY,
    expr: 'sum by (job, instance, partition) (ctflow_nf_conntrack_entries)\n  / on (job, instance, partition)\nctflow_nf_conntrack_entries_limit\nor\n0 * ctflow_nf_conntrack_entries_limit',
  },
  {
    // Entries the current NEW rate keeps alive even if no flow is ever answered: rate x unreplied timeout.
    record: PREDICTED,
    expr: 'sum by (job, instance) (\n  sum by (job, instance, proto) (rate(ctflow_flows_created_total[5m]))\n    * on (job, instance, proto) group_left\n  ctflow_conntrack_unreplied_timeout_seconds\n)',
  },
  {
    // The unreplied timeout of an average new flow: the protocols' timeouts weighted by their NEW
    // rates. With no new flows (0/0) it falls back to the longest timeout; the product it is used
    // in is 0 then anyway, and the series stays continuous.
    record: MEAN_TIMEOUT,
    expr: `(\n  ${PREDICTED}\n    / on (job, instance)\n  sum by (job, instance) (rate(ctflow_flows_created_total[5m]))\n) > 0\nor\nmax by (job, instance) (ctflow_conntrack_unreplied_timeout_seconds)`,
  },
  {
    // The same prediction per table. Flows are counted by protocol per instance, but each table's
    // inserts (conntrack -S insert: one per NEW entry) are counted per partition: the partition's
    // insert rate times the instance's average timeout. Partitions are keyed by address pair, so a
    // flood between two hosts lands on one table; that table is the one to fill first.
    record: PREDICTED_PER_PARTITION,
    expr: `sum by (job, instance, partition) (rate(ctflow_nf_conntrack_stat_insert_total[5m]))\n  * on (job, instance) group_left\n${MEAN_TIMEOUT}`,
  },
];

export const ALERTS: AlertRule[] = [
  {
    alert: 'CtflowDown',
    expr: `${UP} == 0`,
    for: '5m',
    severity: 'critical',
    summary: 'ctflow on {{ $labels.instance }} is down',
    description:
      'Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for 5 minutes: ctflow is not running, not listening, or not reachable. ' +
      'While it is down no traffic is tracked there: its flow records, transitions and metrics stop, and its input partitions wait for another member of the consumer group.',
    signal: UP,
  },
  {
    alert: 'CtflowAbsent',
    expr: `absent(${UP})`,
    for: '10m',
    severity: 'critical',
    summary: 'No ctflow target is being scraped (job {{ $labels.job }})',
    description:
      `Prometheus has no target in job ${CTFLOW_JOB} at all, up or down, for 10 minutes: service discovery lost ctflow, the scrape config changed, or ctflow was never deployed here. ` +
      'Nothing watches the conntrack tables until it is back, and no other ctflow alert can fire.',
    signal: UP,
  },
  {
    alert: 'CtflowEventTimeLagHigh',
    expr: `min_over_time(ctflow_event_time_lag_seconds[10m]) > ${EVENT_TIME_LAG_SECONDS}
and on (job, instance, partition)
rate(ctflow_input_messages_total[10m]) > 0
unless on (job, instance)
ctflow_build_info{mode="replay"}`,
    for: '5m',
    severity: 'warning',
    summary: 'ctflow on {{ $labels.instance }} is {{ $value | humanizeDuration }} behind the traffic on partition {{ $labels.partition }}',
    description:
      `Messages keep arriving on partition {{ $labels.partition }}, yet for the last 10 minutes the newest packet processed there was never less than ${EVENT_TIME_LAG_SECONDS / 60} minutes old (at best {{ $value | humanizeDuration }}): ` +
      "ctflow's tables, metrics and flow records describe the past. Either ctflow is behind its input (see consumer lag) or the input itself arrives late.",
    signal: 'ctflow_event_time_lag_seconds',
  },
  {
    alert: 'CtflowInvalidSpike',
    expr: `(
    ${INVALID_RATIO} > ${INVALID_SPIKE_FACTOR} * ${INVALID_BASELINE}
  or
    (${INVALID_RATIO} unless count_over_time(${INVALID_RATIO}[1d] offset 1h) > 0)
)
and ${INVALID_RATIO} > ${INVALID_SHARE_FLOOR}
and ${INVALID_RATE} > ${INVALID_RATE_FLOOR}`,
    for: '10m',
    severity: 'warning',
    summary: 'INVALID packets ({{ $labels.reason }}) spiking in zone {{ $labels.zone }} on {{ $labels.instance }}',
    description:
      '{{ $value | humanizePercentage }} of the packets in zone {{ $labels.zone }} are INVALID for reason {{ $labels.reason }}: over ' +
      `${INVALID_SPIKE_FACTOR} times this zone and reason's average share of the last day (or a reason not seen before the last hour), ` +
      `above ${INVALID_SHARE_FLOOR * 100}% of the zone's packets and ${INVALID_RATE_FLOOR} packet/s.`,
    signal: INVALID_RATIO,
  },
  {
    alert: 'CtflowConntrackTableExhaustionPredicted',
    expr: `${PREDICTED_PER_PARTITION}\n  > on (job, instance, partition)\nctflow_nf_conntrack_entries_limit`,
    for: '10m',
    severity: 'warning',
    summary: 'The NEW-flow rate on {{ $labels.instance }} will fill conntrack table {{ $labels.partition }}',
    description:
      "At the current rate of new flows into table {{ $labels.partition }}, the entries that stay in it for at least their unreplied timeout ({{ $value | humanize }}) exceed its nf_conntrack_max. Unless replies close them quickly, the table fills and conntrack starts early-dropping and then dropping packets.",
    signal: PREDICTED_PER_PARTITION,
  },
  {
    alert: 'CtflowConntrackTableFilling',
    expr: `${OCCUPANCY} > 0.75`,
    for: '15m',
    severity: 'warning',
    summary: 'conntrack table {{ $labels.partition }} on {{ $labels.instance }} is {{ $value | humanizePercentage }} full',
    description: 'Table entries have been above 75% of nf_conntrack_max for 15 minutes. At 100% the kernel early-drops unassured entries and then drops new flows.',
    signal: OCCUPANCY,
  },
  {
    alert: 'CtflowConntrackTableNearlyFull',
    expr: `${OCCUPANCY} > 0.9`,
    for: '5m',
    severity: 'critical',
    summary: 'conntrack table {{ $labels.partition }} on {{ $labels.instance }} is {{ $value | humanizePercentage }} full',
    description: 'Table entries are above 90% of nf_conntrack_max. New flows are about to be dropped.',
    signal: OCCUPANCY,
  },
  {
    alert: 'CtflowConntrackEarlyDrops',
    expr: 'increase(ctflow_nf_conntrack_stat_early_drop_total[5m]) > 0',
    for: '0m',
    severity: 'warning',
    summary: 'conntrack table {{ $labels.partition }} on {{ $labels.instance }} is evicting entries (early_drop)',
    description: '{{ $value | humanize }} entries were early-dropped in the last 5 minutes: the table was full and conntrack evicted unassured flows to make room.',
    signal: 'increase(ctflow_nf_conntrack_stat_early_drop_total[5m])',
  },
  {
    alert: 'CtflowConntrackDrops',
    expr: 'increase(ctflow_nf_conntrack_stat_drop_total[5m]) + increase(ctflow_nf_conntrack_stat_insert_failed_total[5m]) > 0',
    for: '0m',
    severity: 'critical',
    summary: 'conntrack table {{ $labels.partition }} on {{ $labels.instance }} is dropping new flows',
    description: '{{ $value | humanize }} packets in the last 5 minutes found the table full with nothing to evict (drop) or could not be inserted (insert_failed).',
    signal: 'increase(ctflow_nf_conntrack_stat_drop_total[5m]) + increase(ctflow_nf_conntrack_stat_insert_failed_total[5m])',
  },
  {
    alert: 'CtflowConsumerLagGrowing',
    expr: 'ctflow_consumer_lag_messages > 1000\nand\nderiv(ctflow_consumer_lag_messages[15m]) > 0',
    for: '15m',
    severity: 'warning',
    summary: 'ctflow on {{ $labels.instance }} is falling behind on partition {{ $labels.partition }}',
    description: 'The consumer is {{ $value | humanize }} messages behind and the lag has kept growing for 15 minutes: input arrives faster than ctflow processes it.',
    signal: 'ctflow_consumer_lag_messages',
  },
  {
    alert: 'CtflowDeadLetters',
    expr: 'increase(ctflow_dead_letters_total[10m]) > 0',
    for: '0m',
    severity: 'warning',
    summary: 'ctflow on {{ $labels.instance }} dead-lettered input on partition {{ $labels.partition }}',
    description: '{{ $value | humanize }} input messages in the last 10 minutes could not be decoded and went to the dead-letter topic.',
    signal: 'increase(ctflow_dead_letters_total[10m])',
  },
];

/** The rule file Prometheus loads (rule_files:), as a plain object for YAML. */
export function rulesFile(runbookBase: string): unknown {
  return {
    groups: [
      { name: 'ctflow.records', rules: RECORDING_RULES.map((r) => ({ record: r.record, expr: r.expr })) },
      {
        name: 'ctflow.alerts',
        rules: ALERTS.map((a) => ({
          alert: a.alert,
          expr: a.expr,
          for: a.for,
          labels: { severity: a.severity },
          annotations: { summary: a.summary, description: a.description, runbook_url: `${runbookBase}#${a.alert.toLowerCase()}` },
        })),
      },
    ],
  };
}

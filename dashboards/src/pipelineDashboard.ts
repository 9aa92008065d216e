/**
 * "ctflow / pipeline": is ctflow keeping up? Consumer and event-time lag per partition,
 * throughput, batch sizes and latency, dead letters and the process itself.
 */
import type { Dashboard } from '@grafana/schema';
import { dashboard, datasourceVariable, queryVariable, row, timeseries } from './panels';

const I = 'instance=~"$instance"';

export function pipelineDashboard(): Dashboard {
  const quantiles = (metric: string) =>
    [0.5, 0.99].map((q) => ({ expr: `histogram_quantile(${q}, sum by (le) (rate(${metric}_bucket{${I}}[$__rate_interval])))`, legend: `p${q * 100}` }));
  return dashboard(
    'ctflow-pipeline',
    'ctflow / pipeline',
    "ctflow's own health: lag, throughput, batches, dead letters, process.",
    [datasourceVariable(), queryVariable('instance', 'Instance', 'label_values(ctflow_build_info, instance)')],
    [
      row('Lag'),
      timeseries({
        title: 'Consumer lag',
        description: 'Messages between the last one processed and the high watermark, per partition.',
        queries: [{ expr: `sum by (instance, partition) (ctflow_consumer_lag_messages{${I}})`, legend: '{{instance}} p{{partition}}' }],
        w: 12,
        h: 8,
      }),
      timeseries({
        title: 'Event-time lag',
        description: "Wall clock minus each partition's packet clock: how old the newest packet processed is.",
        queries: [{ expr: `max by (instance, partition) (ctflow_event_time_lag_seconds{${I}})`, legend: '{{instance}} p{{partition}}' }],
        unit: 's',
        w: 12,
        h: 8,
      }),
      row('Throughput'),
      timeseries({
        title: 'Messages and packets',
        description: 'Input messages and IP packets processed per second.',
        queries: [
          { expr: `sum by (instance) (rate(ctflow_input_messages_total{${I}}[$__rate_interval]))`, legend: 'messages {{instance}}' },
          { expr: `sum by (instance) (rate(ctflow_packets_total{${I}}[$__rate_interval]))`, legend: 'packets {{instance}}' },
        ],
        unit: 'ops',
        w: 8,
        h: 8,
      }),
      timeseries({
        title: 'Batch processing time',
        description: 'Time to decode, track and encode one batch (median and 99th percentile).',
        queries: quantiles('ctflow_batch_processing_seconds'),
        unit: 's',
        w: 8,
        h: 8,
      }),
      timeseries({
        title: 'Batch size',
        description: 'Input messages per batch (median and 99th percentile).',
        queries: quantiles('ctflow_batch_size_messages'),
        w: 8,
        h: 8,
      }),
      row('Errors and process'),
      timeseries({
        title: 'Dead letters',
        description: 'Input messages sent to the dead-letter topic, per partition.',
        queries: [{ expr: `sum by (instance, partition) (increase(ctflow_dead_letters_total{${I}}[$__rate_interval]))`, legend: '{{instance}} p{{partition}}' }],
        w: 8,
        h: 8,
      }),
      timeseries({
        title: 'CPU',
        description: 'CPU seconds per second used by the ctflow process.',
        queries: [{ expr: `rate(process_cpu_seconds_total{${I}}[$__rate_interval])`, legend: '{{instance}}' }],
        unit: 'percentunit',
        w: 8,
        h: 8,
      }),
      timeseries({
        title: 'Memory',
        description: 'Resident memory and V8 heap in use.',
        queries: [
          { expr: `process_resident_memory_bytes{${I}}`, legend: 'rss {{instance}}' },
          { expr: `sum by (instance) (nodejs_heap_size_used_bytes{${I}})`, legend: 'heap {{instance}}' },
        ],
        unit: 'bytes',
        w: 8,
        h: 8,
      }),
    ],
  );
}

/**
 * OTLP export: an OpenTelemetry MeterProvider with the official OTLP/HTTP metric exporter,
 * pushing ctflow's instruments every `intervalMs` to an OpenTelemetry Collector (or any OTLP
 * receiver). Only started when an endpoint is configured.
 *
 * Resource: service.name "ctflow", service.version, service.instance.id (host:pid unless
 * given), ctflow.mode (live or replay, as ctflow_build_info's mode label says) and ctflow.zone
 * when the deployment serves one zone (telemetry.zone); OTEL_RESOURCE_ATTRIBUTES and
 * OTEL_SERVICE_NAME override them, as operators expect of any OpenTelemetry SDK.
 */
import { hostname } from 'node:os';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import type { Resource } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { PipelineTelemetry } from '../telemetry/telemetry';
import { ATTR_MODE, ATTR_ZONE, registerInstruments } from './instruments';

export interface OtlpOptions {
  /** The full metrics URL, e.g. http://127.0.0.1:4318/v1/metrics. */
  url: string;
  /** Export period (default 15 s). */
  intervalMs?: number;
  /** Extra request headers (an authorization header for a hosted collector). */
  headers?: Record<string, string>;
  version?: string;
  instanceId?: string;
  zone?: number;
  /** live for `ctflow run`, replay for a capture or topic replay (default live). */
  mode?: 'live' | 'replay';
}

export interface OtlpExport {
  /** Collects and sends now (the end of a replay, before the process exits). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** The resource every export carries: ctflow's attributes, then the operator's from the environment on top. */
export function otlpResource(o: Pick<OtlpOptions, 'version' | 'instanceId' | 'zone' | 'mode'>): Resource {
  const ours = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: 'ctflow',
    [ATTR_SERVICE_VERSION]: o.version ?? 'unknown',
    [ATTR_SERVICE_INSTANCE_ID]: o.instanceId ?? `${hostname()}:${process.pid}`,
    [ATTR_MODE]: o.mode ?? 'live',
    ...(o.zone !== undefined ? { [ATTR_ZONE]: o.zone } : {}),
  });
  return ours.merge(detectResources({ detectors: [envDetector] }));
}

export function startOtlpExport(t: PipelineTelemetry, o: OtlpOptions): OtlpExport {
  const resource = otlpResource(o);
  const exporter = new OTLPMetricExporter({ url: o.url, headers: o.headers });
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: o.intervalMs ?? 15_000 });
  const provider = new MeterProvider({ resource, readers: [reader] });
  registerInstruments(provider.getMeter('ctflow', o.version), t);
  return {
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

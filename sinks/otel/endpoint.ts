/**
 * Where OTLP metrics go, from an explicit URL or the standard environment variables
 * (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT as is, OTEL_EXPORTER_OTLP_ENDPOINT plus /v1/metrics);
 * undefined when none is set, and then nothing is exported. Apart from the SDK, so the CLI can
 * decide without loading it.
 */
export function otlpMetricsUrl(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (explicit) return explicit;
  if (env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) return env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return base ? `${base.replace(/\/+$/, '')}/v1/metrics` : undefined;
}

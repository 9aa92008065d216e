/**
 * The telemetry of a running ctflow, put together: a PipelineTelemetry (the observer a
 * pipeline reports to), the Prometheus registry over it, the HTTP API when --http is given and
 * the OTLP export when an endpoint is configured. `ctflow replay --http` uses it, and so can
 * `ctflow run`: hand `service.telemetry` to the pipeline as its observer and set readiness as
 * the pipeline comes up.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { prometheusRegistry } from '../sinks/metrics/prometheus';
import { parseListenAddress } from '../sinks/http/address';
import { startApiServer } from '../sinks/http/server';
import type { ApiServer, Readiness } from '../sinks/http/server';
import { otlpMetricsUrl } from '../sinks/otel/endpoint';
import { startOtlpExport } from '../sinks/otel/exporter';
import type { OtlpExport } from '../sinks/otel/exporter';
import { PipelineTelemetry } from '../sinks/telemetry/telemetry';

/** The environment variable holding the API's bearer token (kept off the command line, where `ps` shows it). */
export const TOKEN_ENV = 'CTFLOW_HTTP_TOKEN';

export interface TelemetryServeOptions {
  /** Listen address for the API and /metrics (PORT, HOST:PORT, [IPv6]:PORT); none: no server. */
  http?: string;
  /** OTLP metrics URL; else the OTEL_EXPORTER_OTLP_* environment; else no export. */
  otlp?: string;
  otlpIntervalMs?: number;
  /** Flows in the top-N series (default 20). */
  topFlows?: number;
  /** What is observed: the live pipeline (default) or a capture replay (ctflow_build_info's mode). */
  mode?: 'live' | 'replay';
  /** Seconds a new counter series shows 0 before its value, so rate() sees its first growth (default 0). */
  newSeriesHoldSeconds?: number;
  /** The zone this deployment serves, as the OTLP resource's ctflow.zone (none: not set). */
  zone?: number;
  /** Seconds between walks of the tables for the table series (default 10). */
  tableRefreshSeconds?: number;
  env?: NodeJS.ProcessEnv;
  /** Where problems go (a failed final OTLP export). */
  log?(line: string): void;
}

export interface TelemetryService {
  readonly telemetry: PipelineTelemetry;
  readonly registry: Registry;
  readonly server?: ApiServer;
  readonly otlp?: OtlpExport;
  setReadiness(r: Readiness): void;
  /** Sends a last OTLP export, then stops the server and the exporter. */
  close(): Promise<void>;
}

/** package.json's version, found from the source tree or from dist/. */
export function ctflowVersion(): string {
  for (const dir of [join(__dirname, '..'), join(__dirname, '..', '..')]) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ctflow' && pkg.version) return pkg.version;
    }
  }
  return 'unknown';
}

export function positiveInteger(text: string, option: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < 1 || n > max) throw new Error(`${option}: '${text}' is not an integer from 1 to ${max}`);
  return n;
}

export async function startTelemetry(o: TelemetryServeOptions): Promise<TelemetryService> {
  const env = o.env ?? process.env;
  const version = ctflowVersion();
  const telemetry = new PipelineTelemetry({ topFlows: o.topFlows, refreshMs: (o.tableRefreshSeconds ?? 10) * 1000 });
  const registry = prometheusRegistry(telemetry, { version, mode: o.mode, newSeriesHoldMs: (o.newSeriesHoldSeconds ?? 0) * 1000 });
  let readiness: Readiness = { ready: false, status: 'starting' };
  const token = env[TOKEN_ENV] || undefined;
  const server = o.http !== undefined ? await startApiServer(parseListenAddress(o.http), { telemetry, registry, token, readiness: () => readiness }) : undefined;
  const url = otlpMetricsUrl(o.otlp, env);
  const otlp = url ? startOtlpExport(telemetry, { url, intervalMs: o.otlpIntervalMs, version, mode: o.mode, zone: o.zone }) : undefined;
  return {
    telemetry,
    registry,
    server,
    otlp,
    setReadiness: (r) => {
      readiness = r;
    },
    close: async () => {
      if (otlp) {
        await otlp.flush().catch((err: Error) => o.log?.(`ctflow: OTLP export to ${url} failed: ${err.message}`));
        await otlp.shutdown().catch(() => undefined);
      }
      await server?.close();
    },
  };
}

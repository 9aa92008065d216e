/**
 * The live HTTP API beside /metrics, on node:http:
 *
 *   GET /metrics   Prometheus text format (prom-client)
 *   GET /flows     the table as JSON, filtered, sorted and paginated (see flowQuery.ts)
 *   GET /stats     conntrack -S and the pipeline's counts as JSON
 *   GET /healthz   200 while the process serves
 *   GET /readyz    200 once the pipeline is ready (replay finished, consumer running), else 503
 *
 * With a bearer token, /metrics, /flows and /stats want `Authorization: Bearer <token>`;
 * the probes stay open, since orchestrators call them without credentials and they reveal
 * nothing about the traffic.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { PipelineTelemetry } from '../telemetry/telemetry';
import type { ListenAddress } from './address';
import { flowPage, parseFlowQuery, QueryError } from './flowQuery';
import { statsBody } from './stats';
import { TableReadError } from '../telemetry/tableRequests';

export interface Readiness {
  ready: boolean;
  /** What the process is doing, shown by /readyz either way. */
  status: string;
}

export interface ApiOptions {
  telemetry: PipelineTelemetry;
  registry: Registry;
  /** When set, required as a bearer token on everything but the probes. */
  token?: string;
  readiness(): Readiness;
}

export interface ApiServer {
  /** The address actually bound (the port is the kernel's pick when 0 was asked). */
  readonly host: string;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

const OPEN_PATHS = new Set(['/healthz', '/readyz']);

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

function authorized(req: IncomingMessage, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1].trim());
  const wanted = Buffer.from(token);
  // Constant time, so the token cannot be guessed byte by byte from response times.
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

async function route(o: ApiOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://ctflow');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, { error: `method ${req.method} not allowed` }, { allow: 'GET, HEAD' });
    return;
  }
  if (o.token !== undefined && !OPEN_PATHS.has(url.pathname) && !authorized(req, o.token)) {
    send(res, 401, { error: 'a bearer token is required' }, { 'www-authenticate': 'Bearer realm="ctflow"' });
    return;
  }
  switch (url.pathname) {
    case '/metrics':
      send(res, 200, await o.registry.metrics(), { 'content-type': o.registry.contentType });
      return;
    case '/flows':
      try {
        const query = parseFlowQuery(url.searchParams);
        const page = flowPage(await o.telemetry.ask({ kind: 'flows', query }), query);
        const next = page.offset + page.flows.length < page.total ? page.offset + page.flows.length : null;
        send(res, 200, { ...page, next });
      } catch (err) {
        if (!(err instanceof QueryError)) throw err;
        send(res, 400, { error: err.message, parameter: err.parameter });
      }
      return;
    case '/stats':
      send(res, 200, await statsBody(o.telemetry));
      return;
    case '/healthz':
      send(res, 200, { status: 'ok' });
      return;
    case '/readyz': {
      const r = o.readiness();
      send(res, r.ready ? 200 : 503, r);
      return;
    }
    default:
      send(res, 404, { error: `no such endpoint: ${url.pathname}`, endpoints: ['/metrics', '/flows', '/stats', '/healthz', '/readyz'] });
  }
}

export async function startApiServer(address: ListenAddress, o: ApiOptions): Promise<ApiServer> {
  const server: Server = createServer((req, res) => {
    route(o, req, res).catch((err: Error) => {
      // A table in a worker that is gone or too slow: the answer would be partial, so none is given.
      if (!res.headersSent) send(res, err instanceof TableReadError ? 503 : 500, { error: err.message });
      else res.destroy(err);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const hostText = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    host: bound.address,
    port: bound.port,
    url: `http://${hostText}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

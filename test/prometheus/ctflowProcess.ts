/**
 * `ctflow replay CAPTURE --http ADDR --linger ... --json` in a child process, run from the
 * TypeScript sources (runTs.js): the address it bound comes from its "serving" line, the replay
 * summary (the engine's own totals) from its JSON output once the replay is done. stop() sends
 * SIGTERM, which ends the lingering cleanly.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export interface ReplaySummary {
  frames: number;
  packets: number;
  ctstate: Record<string, number>;
  invalidReasons: Record<string, number>;
  events: Record<string, number>;
  entriesAtEnd: number;
  stats: Record<string, number>;
}

/** A replay that is serving; with --speed it may still be replaying. */
export interface ServingReplay {
  /** host:port it serves on. */
  readonly address: string;
  readonly url: string;
  /** The engine's totals, once the replay has finished. */
  readonly finished: Promise<ReplaySummary>;
  stop(): Promise<number | null>;
}

export interface CtflowProcess extends ServingReplay {
  readonly summary: ReplaySummary;
}

export interface ReplayProcessOptions {
  /** More ctflow options (--speed, --top-flows, ...). */
  extra?: string[];
  env?: NodeJS.ProcessEnv;
  /** --http address (default 127.0.0.1:0: any free port). */
  http?: string;
}

const RUN_TS = join(__dirname, 'runTs.js');

/** Resolves as soon as ctflow serves (a paced replay is then under way). */
export function serveReplay(capture: string, o: ReplayProcessOptions = {}): Promise<ServingReplay> {
  const child = spawn(process.execPath, [RUN_TS, 'replay', capture, '--http', o.http ?? '127.0.0.1:0', '--linger', '600', '--json', ...(o.extra ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...o.env },
  });
  let out = '';
  let err = '';
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const finished = new Promise<ReplaySummary>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line && out.includes('\n')) resolve(JSON.parse(line) as ReplaySummary);
    });
    void exit.then((code) => reject(new Error(`ctflow replay ${capture} exited (${code}) before its summary:\n${err}`)));
  });
  finished.catch(() => undefined); // a caller that never waits for it must not see an unhandled rejection
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving http:\/\/(\S+) /.exec(err);
      if (m) resolve({ address: m[1], url: `http://${m[1]}`, finished, stop: () => (child.kill('SIGTERM'), exit) });
    });
    void exit.then((code) => reject(new Error(`ctflow replay ${capture} exited (${code}) before serving:\n${err}`)));
  });
}

/** Resolves once the replay is done and its final state is being served. */
export async function startReplay(capture: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<CtflowProcess> {
  const p = await serveReplay(capture, { extra, env });
  try {
    return { ...p, summary: await p.finished };
  } catch (err) {
    await p.stop();
    throw err;
  }
}

/**
 * `ctflow replay CAPTURE --http 127.0.0.1:0 --linger ... --json` in a child process, run from
 * the TypeScript sources (runTs.js): the address it bound comes from its "serving" line, the
 * replay summary (the engine's own totals) from its JSON output, and it is ready once /readyz
 * says so. stop() sends SIGTERM, which ends the lingering cleanly.
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

export interface CtflowProcess {
  /** host:port it serves on. */
  readonly address: string;
  readonly url: string;
  readonly summary: ReplaySummary;
  stop(): Promise<number | null>;
}

const RUN_TS = join(__dirname, 'runTs.js');

export function startReplay(capture: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<CtflowProcess> {
  const child = spawn(process.execPath, [RUN_TS, 'replay', capture, '--http', '127.0.0.1:0', '--linger', '600', '--json', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    let address: string | undefined;
    let summary: ReplaySummary | undefined;
    const settle = () => {
      if (!address || !summary) return;
      const url = `http://${address}`;
      resolve({
        address,
        url,
        summary,
        stop: async () => {
          child.kill('SIGTERM');
          return exit;
        },
      });
    };
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line && out.includes('\n') && !summary) {
        summary = JSON.parse(line) as ReplaySummary;
        settle();
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving http:\/\/(\S+) /.exec(err);
      if (m && !address) {
        address = m[1];
        settle();
      }
    });
    void exit.then((code) => reject(new Error(`ctflow replay ${capture} exited (${code}) before serving:\n${err}`)));
  });
}

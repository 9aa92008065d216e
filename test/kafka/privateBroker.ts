/**
 * For the tests of the broker itself and those that start one of their own (to halt and resume
 * it): whether the tools jest's global setup would need are there, a port nobody else reaches
 * for, and reading with a raw kafkajs consumer.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Consumer, EachMessagePayload } from 'kafkajs';

/** What starting a broker needs: a JDK and Maven; the missing one's name, or null. */
export function missingBrokerTool(): string | null {
  const home = process.env.JAVA_HOME;
  const java = home && existsSync(join(home, 'bin', 'java')) ? join(home, 'bin', 'java') : 'java';
  for (const [cmd, args] of [
    [java, ['-version']],
    ['mvn', ['-v']],
  ] as const) {
    if (spawnSync(cmd, args, { stdio: 'ignore', timeout: 60_000 }).error) return `${cmd} not found`;
  }
  return null;
}

/** A free port picked by the kernel: not 19092, which other test runs on this machine reach for. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0 }, () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** Runs `consumer` until `done` says it has seen enough, or fails after `timeoutMs` with what it got. */
export function consumeUntil(
  consumer: Consumer,
  done: (seen: EachMessagePayload[]) => boolean,
  timeoutMs = 20_000,
): Promise<EachMessagePayload[]> {
  const seen: EachMessagePayload[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumer saw ${seen.length} message(s) in ${timeoutMs} ms, not enough`)), timeoutMs);
    consumer
      .run({
        autoCommit: false,
        eachMessage: async (payload) => {
          seen.push(payload);
          if (done(seen)) {
            clearTimeout(timer);
            resolve(seen);
          }
        },
      })
      .catch((err: unknown) => {
        clearTimeout(timer);
        reject(err);
      });
  });
}

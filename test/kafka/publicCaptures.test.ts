/**
 * The public captures in ../shared (written by other people, so read from there at test time and
 * never copied into the project), each produced into a topic and replayed from it: the replay
 * must print exactly the transitions `ctflow events` prints for the same capture, and write one
 * flow record per DESTROY.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { main } from '../../main';
import { brokers, cliAsync, runId, withoutId } from './helpers';

const root = resolve(__dirname, '..', '..', '..', 'shared', 'captures', 'public-oracle');
const present = existsSync(root);
const run = runId;

function events(path: string): string[] {
  const out: string[] = [];
  main(['events', path], { out: (l) => out.push(l), err: () => undefined });
  return out;
}

const label = !present ? ' (skipped: ../shared/captures/public-oracle is absent)' : !brokers ? ' (skipped: KAFKA_BROKERS is not set)' : '';
const maybe = present && brokers ? test : test.skip;

maybe(`public captures through Kafka give the transitions and flow records of the in-process engine${label}`, async () => {
  const names = readdirSync(root).filter((n) => existsSync(join(root, n, 'packets.pcap'))).sort();
  expect(names.length).toBeGreaterThan(50);
  const failures: string[] = [];
  let lines = 0;
  // A few at a time: each replay spends most of its time joining a consumer group.
  const queue = [...names];
  const worker = async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      const path = join(root, name, 'packets.pcap');
      const topic = `ctflow-test-public-${run}-${name.replace(/[^A-Za-z0-9._-]/g, '_')}`.slice(0, 240);
      const p = await cliAsync('produce', path, '--topic', topic, '--partitions', '2', '--brokers', brokers, '--quiet');
      if (p.code !== 0) {
        failures.push(`${name}: produce failed: ${p.err.join(' ')}`);
        continue;
      }
      const r = await cliAsync('replay', '--topic', topic, '--brokers', brokers, '--events-out', '-', '--out-prefix', `${topic}.`);
      const local = events(path);
      lines += local.length;
      const same = JSON.stringify(r.out.map(withoutId).sort()) === JSON.stringify(local.map(withoutId).sort());
      const destroys = local.filter((l) => l.includes('[DESTROY]')).length;
      const records = Number(/ (\d+) flow records/.exec(r.err.join('\n'))?.[1] ?? -1);
      if (r.code !== 0 || !same) failures.push(`${name}: ${r.out.length} transitions replayed, ${local.length} in process; ${r.err.join(' ')}`);
      if (records !== destroys) failures.push(`${name}: ${records} flow records for ${destroys} DESTROY events`);
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  expect(failures).toEqual([]);
  expect(lines).toBeGreaterThan(1000);
}, 600_000);

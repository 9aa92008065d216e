/** What the Kafka tests share: the broker from jest's global setup, the CLI run in process, and reading a topic back. */
import { main, mainAsync } from '../../main';
import { KafkaConnection } from '../../kafka/client';
import type { InputMessage } from '../../kafka/client';

export const brokers = process.env.KAFKA_BROKERS ?? '';
export const runId = `${process.pid}-${Date.now()}`;

export const connect = (): KafkaConnection => new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test' });

export interface CliResult {
  code: number;
  out: string[];
  err: string[];
}

export function cli(...argv: string[]): CliResult {
  const r: CliResult = { code: 0, out: [], err: [] };
  r.code = main(argv, { out: (l) => r.out.push(l), err: (l) => r.err.push(l) });
  return r;
}

export async function cliAsync(...argv: string[]): Promise<CliResult> {
  const r: CliResult = { code: 0, out: [], err: [] };
  r.code = await mainAsync(argv, { out: (l) => r.out.push(l), err: (l) => r.err.push(l) });
  return r;
}

/** Reads a whole topic (every partition to the end it has now), under a group that commits nothing. */
export async function readTopic(topic: string): Promise<InputMessage[]> {
  const conn = connect();
  try {
    const ends = await (await conn.admin()).offsets(topic);
    const want = ends.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
    const got: InputMessage[] = [];
    if (want === 0) return got;
    // kafkajs can hand a batch over again (it refetches from the last resolved offset): each
    // message is kept once, by partition and offset, so a re-delivery is not read as a duplicate.
    const seen = new Set<string>();
    const consumer = await conn.consumer(`ctflow-test-read-${runId}-${topic}-${Date.now()}`);
    await new Promise<void>((resolve) => {
      void consumer.run({
        groupId: '',
        topics: [topic],
        fromBeginning: true,
        onBatch: async (b) => {
          for (const m of b.messages) {
            const at = `${m.partition}:${m.offset}`;
            if (seen.has(at)) continue;
            seen.add(at);
            got.push(m);
          }
          if (got.length >= want) resolve();
        },
      });
    });
    await consumer.stop();
    return got.sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset));
  } finally {
    await conn.close();
  }
}

/** An event line without what legitimately differs between engines: the entry id. */
export const withoutId = (line: string): string => line.replace(/ id=\d+$/, '');

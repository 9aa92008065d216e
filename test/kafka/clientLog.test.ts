/**
 * What kafka/client.ts passes on of kafkajs's own log: an error the broker answered with is named
 * in the line, not only the request it answered ("Response Produce(key: 0, version: 7)" alone
 * leaves a user guessing). Against the real broker, with a message over the topic's
 * max.message.bytes: an answer kafkajs logs and does not retry. And the answers that only mean a
 * new topic's partitions are not open yet, while ensureTopics waits for them, are not errors.
 */
import { KafkaConnection } from '../../kafka/client';
import { brokers, runId } from './helpers';

const describeKafka = brokers ? describe : describe.skip;

describeKafka('kafka client log (real broker)', () => {
  test("a broker's error answer is in the logged line, after the request it answered", async () => {
    const lines: string[] = [];
    const conn = new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test', log: (level, line) => lines.push(`${level} ${line}`) });
    const topic = `ctflow-test-client-log-${runId}`;
    try {
      const admin = await conn.admin();
      await admin.ensureTopics([{ topic, partitions: 1, config: { 'max.message.bytes': '1024' } }]);
      const producer = await conn.producer();
      await expect(producer.send([{ topic, partition: 0, value: Buffer.alloc(8192) }])).rejects.toThrow(/larger than|too large/i);
      const answered = lines.filter((l) => /^error kafka Connection: Response Produce\(key: 0, version: \d+\)/.test(l));
      expect(answered.length).toBeGreaterThan(0);
      expect(answered[0]).toMatch(/\): .*(larger than|too large)/i);
      await admin.deleteTopics([topic]);
    } finally {
      await conn.close();
    }
  }, 60_000);

  test('creating topics and waiting for their partitions logs nothing: "not the leader" while a new partition opens is the wait, not an error', async () => {
    const lines: string[] = [];
    const conn = new KafkaConnection({ brokers: brokers.split(','), clientId: 'ctflow-test', log: (level, line) => lines.push(`${level} ${line}`) });
    const topics = [0, 1, 2].map((i) => `ctflow-test-client-settle-${i}-${runId}`);
    try {
      const admin = await conn.admin();
      for (const topic of topics) {
        await admin.ensureTopics([{ topic, partitions: 4 }]);
        // Open: every partition answers at once, through the retry-free paths too.
        expect((await admin.offsets(topic)).map((p) => p.high)).toEqual(['0', '0', '0', '0']);
      }
      expect(lines).toEqual([]);
      await admin.deleteTopics(topics);
    } finally {
      await conn.close();
    }
  }, 60_000);
});

if (!brokers) {
  test.skip('kafka client log: skipped because KAFKA_BROKERS is not set (jest global setup did not start a broker)', () => undefined);
}

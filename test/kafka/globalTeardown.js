// Stops the broker that globalSetup started, and only that one: a cluster given through
// KAFKA_BROKERS belongs to whoever provided it.
'use strict';

const broker = require('../../scripts/kafka/broker.js');

module.exports = async function globalTeardown() {
  const handle = globalThis.__ctflowKafkaBroker;
  if (!handle) return;
  globalThis.__ctflowKafkaBroker = undefined;
  const r = await broker.stop(handle);
  if (process.env.KAFKA_BROKERS === handle.brokers) delete process.env.KAFKA_BROKERS;
  if (!r.stopped) process.stderr.write(`kafka: broker pid ${handle.pid} was already gone at teardown (${r.reason})\n`);
};

// Gives the test run a Kafka cluster: the one named by KAFKA_BROKERS if set, else a fresh local
// broker (scripts/kafka/broker.js). Setting process.env here is how the address reaches the test
// files: jest starts its workers after globalSetup, and they inherit this environment.
'use strict';

const path = require('node:path');
const broker = require('../../scripts/kafka/broker.js');

module.exports = async function globalSetup() {
  if (process.env.KAFKA_BROKERS) {
    process.stderr.write(`\nkafka: using KAFKA_BROKERS=${process.env.KAFKA_BROKERS} (no local broker started)\n`);
    return;
  }
  const t0 = Date.now();
  const handle = await broker.start({
    // Not recorded in .cache/kafka/broker.json: that file belongs to `npm run kafka:start`, and a
    // test run must neither stop nor replace a broker someone started by hand.
    writeState: false,
    // Killed if this jest process dies without reaching globalTeardown.
    watchPid: process.pid,
    log: (line) => process.stderr.write(`\n${line}\n`),
  });
  // jest runs globalTeardown in this same process, with these globals still in place.
  globalThis.__ctflowKafkaBroker = handle;
  process.env.KAFKA_BROKERS = handle.brokers;
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  process.stderr.write(
    `\nkafka: started Kafka ${handle.version} at ${handle.brokers} in ${secs} s (pid ${handle.pid}, log ${path.relative(process.cwd(), handle.logFile)})\n`,
  );
};

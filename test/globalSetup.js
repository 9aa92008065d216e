// jest's globalSetup: everything the test run needs from outside node_modules, each piece in
// its own module. Prometheus first: it may need apt-get, which is slow but needs no network
// port, while the Kafka broker starts with a watchdog and is best started last.
'use strict';

const ensurePrometheus = require('./prometheus/ensurePrometheus.js');
const kafkaSetup = require('./kafka/globalSetup.js');

module.exports = async function globalSetup(...args) {
  ensurePrometheus();
  await kafkaSetup(...args);
};

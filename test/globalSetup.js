// jest's globalSetup: everything the test run needs from outside node_modules, each piece in
// its own module. Prometheus and Chromium first: they may need apt-get, which is slow but needs
// no network port, while the Kafka broker starts with a watchdog and is best started last.
'use strict';

const ensurePrometheus = require('./prometheus/ensurePrometheus.js');
const ensureChromium = require('./sinks/report/ensureChromium.js');
const kafkaSetup = require('./kafka/globalSetup.js');

module.exports = async function globalSetup(...args) {
  ensurePrometheus();
  ensureChromium();
  await kafkaSetup(...args);
};

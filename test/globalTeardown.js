// jest's globalTeardown: stops what globalSetup started (the Kafka broker; Prometheus
// processes belong to the tests that start them).
'use strict';

const kafkaTeardown = require('./kafka/globalTeardown.js');

module.exports = async function globalTeardown(...args) {
  await kafkaTeardown(...args);
};

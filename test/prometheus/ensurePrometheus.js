// Finds Debian's prometheus and promtool for the tests, installing the package when they are
// missing (test/ensureDebianPackage.js). The paths go to the test files through the environment
// (CTFLOW_PROMETHEUS, CTFLOW_PROMTOOL); when they cannot be had, CTFLOW_PROMETHEUS_MISSING says
// why, and the tests that need them fail with it.
//
// Only the binaries are used: the tests run their own prometheus on 127.0.0.1 with a temporary
// config and storage. Debian's service is never started here (the package's own scripts leave
// that to the init system, which containers do not run).
'use strict';

const ensureDebianPackage = require('../ensureDebianPackage.js');

module.exports = function ensurePrometheus(log) {
  ensureDebianPackage(
    {
      pkg: 'prometheus',
      programs: { CTFLOW_PROMETHEUS: 'prometheus', CTFLOW_PROMTOOL: 'promtool' },
      missingVar: 'CTFLOW_PROMETHEUS_MISSING',
      neededBy: 'the metrics tests',
    },
    log,
  );
};

// Finds Debian's chromium for the report's browser test, installing the package when it is
// missing (test/ensureDebianPackage.js): playwright-core drives it, since a test tool's own
// browser download cannot be used here. CTFLOW_CHROMIUM holds its path, or
// CTFLOW_CHROMIUM_MISSING why it could not be had.
'use strict';

const ensureDebianPackage = require('../../ensureDebianPackage.js');

module.exports = function ensureChromium(log) {
  ensureDebianPackage(
    { pkg: 'chromium', programs: { CTFLOW_CHROMIUM: 'chromium' }, missingVar: 'CTFLOW_CHROMIUM_MISSING', neededBy: 'the report browser test' },
    log,
  );
};

// Runs ctflow's CLI from the TypeScript sources in a child process, the way bin/ctflow runs
// dist/: `node test/prometheus/runTs.js replay CAPTURE --http ...`, so end-to-end tests need no
// build step and always run the current sources (scripts/tsRequireHook.js compiles on require).
'use strict';

const path = require('node:path');

require(path.join(__dirname, '..', '..', 'scripts', 'tsRequireHook.js'));
require(path.join(__dirname, '..', '..', 'main.ts')).runCli();

// Runs ctflow's CLI from the TypeScript sources in a child process, the way bin/ctflow runs
// dist/: `node test/prometheus/runTs.js replay CAPTURE --http ...`. TypeScript's own
// transpileModule turns each .ts into CommonJS on require (no type checking: the typecheck
// test does that), so end-to-end tests need no build step and always run the current sources.
// Outputs are cached by file content in the temp directory: the end-to-end tests start dozens
// of ctflow processes, and only the first should pay for loading the compiler.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const cacheDir = path.join(os.tmpdir(), 'ctflow-runts-cache');
let ts;

require.extensions['.ts'] = function compileTs(module, filename) {
  const source = fs.readFileSync(filename, 'utf8');
  const key = crypto.createHash('sha1').update(filename).update('\0').update(source).digest('hex');
  const cached = path.join(cacheDir, `${key}.js`);
  let js;
  try {
    js = fs.readFileSync(cached, 'utf8');
  } catch {
    ts ??= require('typescript');
    js = ts.transpileModule(source, {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, resolveJsonModule: true, sourceMap: false },
    }).outputText;
    fs.mkdirSync(cacheDir, { recursive: true });
    // Written under a unique name and renamed: concurrent processes never read half a file.
    const tmp = `${cached}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, js);
    fs.renameSync(tmp, cached);
  }
  module._compile(js, filename);
};

require(path.join(__dirname, '..', '..', 'main.ts')).runCli();

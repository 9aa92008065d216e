// Lets Node require() ctflow's TypeScript sources directly: TypeScript's own transpileModule turns
// each .ts into CommonJS on require (no type checking: the typecheck test does that). Used to run
// the CLI from the sources in end-to-end tests (test/prometheus/runTs.js) and to start worker
// threads from the sources when ctflow itself runs from them (under jest). Outputs are cached by
// file content in the temp directory, so only the first process pays for loading the compiler.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { threadId } = require('node:worker_threads');

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
    // Written under a unique name and renamed: concurrent processes, and the worker threads of
    // one process (same pid, hence the thread id), never read half a file.
    const tmp = `${cached}.${process.pid}.${threadId}.tmp`;
    fs.writeFileSync(tmp, js);
    fs.renameSync(tmp, cached);
  }
  module._compile(js, filename);
};

// Finds Debian's prometheus and promtool for the tests, installing the package when they are
// missing (a fresh machine or CI): `apt-get install prometheus`, which needs root. The paths go
// to the test files through the environment (CTFLOW_PROMETHEUS, CTFLOW_PROMTOOL); when they
// cannot be had, CTFLOW_PROMETHEUS_MISSING says why, and the tests that need them fail with it.
//
// Only the binaries are used: the tests run their own prometheus on 127.0.0.1 with a temporary
// config and storage. Debian's service is never started here (the package's own scripts leave
// that to the init system, which containers do not run).
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function which(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function apt(args, log) {
  log(`prometheus: apt-get ${args.join(' ')}`);
  const r = spawnSync('apt-get', args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.error) return `apt-get could not run (${r.error.message})`;
  if (r.status !== 0) return `apt-get ${args[0]} exited ${r.status}: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' / ')}`;
  return undefined;
}

function install(log) {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not root, so apt-get cannot install it';
  const install = ['install', '-y', '--no-install-recommends', 'prometheus'];
  // The package lists may be missing or stale on a fresh machine: update once and retry.
  if (apt(install, log) === undefined) return undefined;
  const updateProblem = apt(['update'], log);
  if (updateProblem) return updateProblem;
  return apt(install, log);
}

module.exports = function ensurePrometheus(log = (line) => process.stderr.write(`\n${line}\n`)) {
  let prometheus = process.env.CTFLOW_PROMETHEUS || which('prometheus');
  let promtool = process.env.CTFLOW_PROMTOOL || which('promtool');
  if (!prometheus || !promtool) {
    const t0 = Date.now();
    const problem = install(log);
    prometheus = which('prometheus');
    promtool = which('promtool');
    if (problem || !prometheus || !promtool) {
      const why = `Debian's prometheus package is needed by the metrics tests and could not be installed: ${problem || 'installed, yet prometheus/promtool are not on PATH'}. Install it with: apt-get install prometheus`;
      log(`prometheus: ${why}`);
      process.env.CTFLOW_PROMETHEUS_MISSING = why;
      return;
    }
    log(`prometheus: installed Debian's prometheus package in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  process.env.CTFLOW_PROMETHEUS = prometheus;
  process.env.CTFLOW_PROMTOOL = promtool;
};

// Finds programs from a Debian package for the tests, installing the package when they are
// missing (a fresh machine or CI): `apt-get install PACKAGE`, which needs root. Each program's
// path goes to the test files through an environment variable; when they cannot be had, the
// package's MISSING variable says why, and the tests that need them fail with that message.
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

function apt(pkg, args, log) {
  log(`${pkg}: apt-get ${args.join(' ')}`);
  const r = spawnSync('apt-get', args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.error) return `apt-get could not run (${r.error.message})`;
  if (r.status !== 0) return `apt-get ${args[0]} exited ${r.status}: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' / ')}`;
  return undefined;
}

function install(pkg, log) {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not root, so apt-get cannot install it';
  // Wait for another apt-get (a developer's, or a parallel setup) rather than fail on its lock.
  const install = ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', pkg];
  // The package lists may be missing or stale on a fresh machine: update once and retry.
  if (apt(pkg, install, log) === undefined) return undefined;
  const updateProblem = apt(pkg, ['update'], log);
  if (updateProblem) return updateProblem;
  return apt(pkg, install, log);
}

/**
 * spec: { pkg: Debian package, programs: { ENV_VAR: program name }, missingVar: env var for the
 * reason they are missing, neededBy: which tests need them (for the message) }.
 */
module.exports = function ensureDebianPackage(spec, log = (line) => process.stderr.write(`\n${line}\n`)) {
  const find = () => Object.fromEntries(Object.entries(spec.programs).map(([v, name]) => [v, process.env[v] || which(name)]));
  let found = find();
  if (Object.values(found).some((p) => !p)) {
    const t0 = Date.now();
    const problem = install(spec.pkg, log);
    found = find();
    const absent = Object.entries(found).filter(([, p]) => !p).map(([v]) => spec.programs[v]);
    if (problem || absent.length) {
      const why = `Debian's ${spec.pkg} package is needed by ${spec.neededBy} and could not be installed: ${problem || `installed, yet ${absent.join('/')} not on PATH`}. Install it with: apt-get install ${spec.pkg}`;
      log(`${spec.pkg}: ${why}`);
      process.env[spec.missingVar] = why;
      return;
    }
    log(`${spec.pkg}: installed Debian's ${spec.pkg} package in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  for (const [v, p] of Object.entries(found)) process.env[v] = p;
};

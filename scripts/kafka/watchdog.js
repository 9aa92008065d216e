#!/usr/bin/env node
// Runs the Kafka JVM on behalf of broker.js and makes sure it cannot outlive whoever asked for it.
//
// Why a separate process: the broker must keep running after `broker.js start` (the CLI) exits, yet
// die with a test run that is killed hard (SIGKILL, a crashed jest, a closed terminal). So this
// small process, detached in its own session, is java's parent. It
//   - polls the pid it was told to watch (jest's) and stops java when that process is gone;
//   - forwards SIGTERM/SIGINT/SIGHUP to java, escalating to SIGKILL after a grace period;
//   - records java's pid and, later, its exit status in files broker.js polls during startup;
//   - on an orphaned shutdown, removes the data dir, since nobody is left to do it.
// Without a command (broker.js halt()), it is a guard: java is already down and the data dir is
// kept for resume(); it only deletes that dir should the owner go away first, and exits quietly on
// SIGTERM (resume() or stop() taking over).
// Where util-linux `setpriv` exists, java is additionally started with a parent-death signal, so
// even a SIGKILLed watchdog takes java with it.
//
// Configuration arrives as one JSON argument (see spawnBroker in broker.js).
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const { pidAlive: alive } = require('./processAlive');

const cfg = JSON.parse(process.argv[2]);
const POLL_MS = 500;

function processStartTime(pid) {
  // Field 22 of /proc/<pid>/stat; tells a live process apart from a later one that reused its pid.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return null;
  }
}

function watchedIsGone() {
  if (!cfg.watchPid) return false;
  if (!alive(cfg.watchPid)) return true;
  return cfg.watchStart != null && processStartTime(cfg.watchPid) !== cfg.watchStart;
}

function cleanUp() {
  // The process that owned this broker died without calling stop(): tidy up for it.
  if (!cfg.cleanupDir) return;
  fs.rmSync(cfg.cleanupDir, { recursive: true, force: true });
  if (cfg.stateFile) {
    try {
      const state = JSON.parse(fs.readFileSync(cfg.stateFile, 'utf8'));
      if (state.watchdogPid === process.pid) fs.rmSync(cfg.stateFile, { force: true });
    } catch {
      /* no state file, or someone else's */
    }
  }
}

function guard() {
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => process.exit(0));
  setInterval(() => {
    // stop() deleted the data (and will kill us anyway): nothing left to guard.
    if (cfg.cleanupDir && !fs.existsSync(cfg.cleanupDir)) process.exit(0);
    if (watchedIsGone()) {
      fs.appendFileSync(cfg.logFile, `\n[ctflow watchdog] halted broker's owner ${cfg.watchPid} is gone: deleting its data\n`);
      cleanUp();
      process.exit(0);
    }
  }, POLL_MS);
}

function runJava() {
  const logFd = fs.openSync(cfg.logFile, 'a');
  const child = spawn(cfg.command, cfg.args, {
    cwd: cfg.cwd,
    stdio: ['ignore', logFd, logFd],
    env: process.env,
  });
  fs.closeSync(logFd);

  let stopping = false;
  let orphaned = false;
  let killTimer = null;

  function stopJava(reason) {
    if (stopping) return;
    stopping = true;
    fs.appendFileSync(cfg.logFile, `\n[ctflow watchdog] stopping broker: ${reason}\n`);
    try {
      child.kill('SIGTERM');
    } catch {
      /* already gone */
    }
    killTimer = setTimeout(() => {
      fs.appendFileSync(cfg.logFile, `[ctflow watchdog] no exit after ${cfg.graceMs} ms, sending SIGKILL\n`);
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }, cfg.graceMs);
  }

  child.on('error', (err) => {
    // spawn itself failed (e.g. the java binary vanished): report it the same way as an exit.
    fs.writeFileSync(cfg.exitFile, JSON.stringify({ code: null, signal: null, error: err.message }));
    process.exit(1);
  });

  child.on('spawn', () => {
    fs.writeFileSync(cfg.pidFile, String(child.pid));
  });

  child.on('exit', (code, signal) => {
    if (killTimer) clearTimeout(killTimer);
    fs.writeFileSync(cfg.exitFile, JSON.stringify({ code, signal, at: new Date().toISOString() }));
    if (orphaned) cleanUp();
    process.exit(0);
  });

  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.on(sig, () => stopJava(`watchdog got ${sig}`));
  }

  setInterval(() => {
    if (!stopping && watchedIsGone()) {
      orphaned = true;
      stopJava(`watched process ${cfg.watchPid} is gone`);
    }
  }, POLL_MS);
}

if (cfg.command) runJava();
else guard();

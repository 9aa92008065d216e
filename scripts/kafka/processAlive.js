// Whether a process is still running, for the broker script and its watchdog (one definition for
// both). Plain CommonJS: the watchdog runs as its own node process and loads it directly.
'use strict';

const fs = require('node:fs');

function pidAlive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (err.code !== 'EPERM') return false;
  }
  // A killed process whose parent is gone stays a zombie until pid 1 reaps it, and some container
  // inits never do: kill(pid, 0) still succeeds then, so look at the state letter as well.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return !fs.existsSync('/proc/self/stat');
  }
}

module.exports = { pidAlive };

// CPU time of one PostgreSQL server, read from /proc (Linux): its postmaster and the postmaster's
// children (backends, WAL writer, checkpointer, ...). Sampled by scripts/bench.mjs around each measured
// round, so the server's work per run can be compared between systems. Other PostgreSQL servers on the
// machine are not counted. Undefined where /proc is absent or the server is not on this machine.
import fs from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function stat(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // utime + stime, and cutime + cstime: the time of children that have exited and been reaped (for
    // the postmaster: backends that ended, e.g. when a bench process closed its pool).
    return {
      ppid: Number(fields[1]),
      ticks: Number(fields[11]) + Number(fields[12]),
      reaped: Number(fields[13]) + Number(fields[14]),
    };
  } catch {
    return undefined; // exited meanwhile, or not on this machine
  }
}

/** The postmaster of a backend: its parent process, when the server runs on this machine. */
export function postmasterOf(backendPid) {
  return stat(backendPid)?.ppid;
}

/** @returns {Map<string, number> | undefined} CPU ticks so far of the postmaster `root` and its children */
export function sampleServerCpu(root) {
  if (!root) return undefined;
  let pids;
  try {
    pids = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  const ticks = new Map();
  for (const pid of pids) {
    const s = stat(pid);
    if (s && Number(pid) === root) ticks.set(pid, s.ticks + s.reaped);
    else if (s && s.ppid === root) ticks.set(pid, s.ticks);
  }
  return ticks;
}

/**
 * Milliseconds of server CPU between two samples: the difference of the totals. A backend that exited in
 * between counts too: the postmaster reaps it, and its whole time moves into the postmaster's count
 * (cutime + cstime), which replaces the part sampled before.
 */
export function serverCpuMsBetween(before, after) {
  if (!before || !after) return NaN;
  const total = (sample) => [...sample.values()].reduce((a, b) => a + b, 0);
  return ((total(after) - total(before)) * 1000) / TICKS_PER_SECOND;
}

// CPU time of the PostgreSQL server processes, read from /proc (Linux): the postmaster and its backends,
// i.e. every process named "postgres" on this machine. Sampled by scripts/bench.mjs around each measured
// round, so the server's work per run can be compared between systems. Undefined where /proc is absent.
import fs from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** @returns {Map<string, number> | undefined} CPU ticks (user + system) so far of each postgres process */
export function sampleServerCpu() {
  let pids;
  try {
    pids = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  const ticks = new Map();
  for (const pid of pids) {
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
    const close = stat.lastIndexOf(')');
    if (stat.slice(stat.indexOf('(') + 1, close) !== 'postgres') continue;
    const fields = stat.slice(close + 2).split(' ');
    ticks.set(pid, Number(fields[11]) + Number(fields[12])); // utime, stime (fields 14 and 15 of stat)
  }
  return ticks;
}

/**
 * Milliseconds of server CPU between two samples: processes that lived through both count their
 * difference, new ones all of theirs; one that exited in between is missed (its last ticks are gone).
 */
export function serverCpuMsBetween(before, after) {
  if (!before || !after) return NaN;
  let ticks = 0;
  for (const [pid, now] of after) ticks += now - (before.get(pid) ?? 0);
  return (ticks * 1000) / TICKS_PER_SECOND;
}

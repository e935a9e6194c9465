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
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) }; // utime + stime
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
    if (s && (Number(pid) === root || s.ppid === root)) ticks.set(pid, s.ticks);
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

// Preloaded (node -r) into every process spawnTs() starts. If the test process that spawned it
// dies without killing it (a Jest worker force-killed with SIGKILL, a crash), the child notices
// within half a second and kills itself, so no orphan keeps working on the database after the run.
// Silent and unref'd: it changes nothing else in the child.
import { readFileSync } from 'node:fs';

const expectedParent = Number(process.env.DURABLE_TEST_PARENT_PID);
delete process.env.DURABLE_TEST_PARENT_PID; // not inherited by the child's own children

function parentIsGone(): boolean {
  try {
    // Linux: the live parent pid (process.ppid is fixed at startup).
    const stat = readFileSync('/proc/self/stat', 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== expectedParent;
  } catch {
    try {
      process.kill(expectedParent, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }
}

if (Number.isInteger(expectedParent) && expectedParent > 0) {
  setInterval(() => {
    if (parentIsGone()) process.kill(process.pid, 'SIGKILL');
  }, 500).unref();
}

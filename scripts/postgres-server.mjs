// The embedded PostgreSQL of `npm start`, in a process of its own. start-app.mjs runs it in a separate
// process group, so a Ctrl-C in the terminal does not reach the server directly: the server is stopped
// only after the app has drained its runs and closed its connections (no "connection terminated"
// errors in the app's shutdown). Prints `READY <json>` ({ url, kind }) on stdout, which is a pipe to
// the parent (the URL carries a password and is never printed). Stops the server when its stdin ends
// (the parent is done, or died) or on SIGTERM/SIGINT.
import { startPostgres } from './postgres.mjs';

const dataDir = process.argv[2];

// Listen for the end first: the parent may be done while the server is still starting.
let pg;
let stopRequested = false;
let stopping;
const stop = () => {
  stopRequested = true;
  if (!pg) return; // stopped as soon as it is up
  stopping ??= pg.stop().then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`[postgres] stop failed: ${error?.message ?? error}\n`);
      process.exit(1);
    },
  );
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

pg = await startPostgres({
  dataDir,
  persistent: true,
  log: (message) => process.stderr.write(`[postgres] ${message}\n`),
});
process.stdout.write(`READY ${JSON.stringify({ url: pg.url, kind: pg.kind })}\n`);
if (stopRequested) stop();

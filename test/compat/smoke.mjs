// The smoke scenario for one built compatibility app (test/compat/shared/smoke.ts), as a user's process
// would live it: boot, a three-step run, SIGKILL inside the second step, restart, recovery. Asserts on
// what the database holds. Waits are for events (a line on stdout, an exit) with generous limits.

import { spawn } from 'node:child_process';
import pg from 'pg';

const LIFE_LIMIT_MS = 120_000;

/** App processes alive now (the job kills them when it is stopped). */
export const liveApps = new Set();

/**
 * @param {{ dir: string, node: string, url: string, cls: boolean, log: (line: string) => void }} app
 *   dir: the built app; node: the Node binary to run it with; url: its empty database; cls: whether the
 *   app registered @nestjs-cls/transactional (then TransactionHost.tx must be the step's transaction).
 */
export async function runSmoke({ dir, node, url, cls, log }) {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const orderId = 'order-1';
    const runId = `smoke:${orderId}`;
    const env = { ...process.env, DATABASE_URL: url, COMPAT_ORDER: orderId };

    // First life: boots (migrations run), starts the run, hangs inside `ship`.
    const first = startApp(node, dir, { ...env, COMPAT_HANG_IN_SHIP: '1' }, log);
    await first.waitFor((line) => line === 'IN_SHIP', 'the first life to reach step ship');
    const order = await db.query(
      `SELECT status, attempt, xmin::text AS xid FROM compat_orders WHERE id = $1`,
      [orderId],
    );
    check(
      order.rows.length === 1 && order.rows[0].attempt === 2,
      'only the second attempt of reserve left its row',
      order.rows,
    );
    const reserve = await stepRow(db, runId, 'reserve#1');
    check(reserve?.status === 'succeeded', 'reserve#1 is checkpointed', reserve);
    check(
      reserve.xid === order.rows[0].xid,
      "reserve's checkpoint committed in the order row's transaction",
      {
        step: reserve.xid,
        order: order.rows[0].xid,
      },
    );
    check((await stepRow(db, runId, 'ship#1')) === undefined, 'ship#1 has no checkpoint before the kill');

    first.child.kill('SIGKILL');
    await first.exited;
    log(`killed the first life (pid ${first.child.pid}) inside ship`);

    // Second life: the same executor id recovers the run at once and finishes it.
    const second = startApp(node, dir, env, log);
    const resultLine = await second.waitFor(
      (line) => line.startsWith('RESULT '),
      'the recovered run to finish',
    );
    const code = await second.exited;
    check(code === 0, 'the second life exits cleanly after app.close()', { code });
    const output = JSON.parse(resultLine.slice('RESULT '.length));
    check(output.orderId === orderId, 'the run returned its output', output);

    const run = await db.query(`SELECT status FROM durable.runs WHERE id = $1`, [runId]);
    check(run.rows[0]?.status === 'succeeded', 'the run succeeded', run.rows);
    const steps = await db.query(`SELECT key, status FROM durable.steps WHERE run_id = $1 ORDER BY seq`, [
      runId,
    ]);
    check(
      JSON.stringify(steps.rows) ===
        JSON.stringify(['reserve#1', 'ship#1', 'complete#1'].map((key) => ({ key, status: 'succeeded' }))),
      'three steps succeeded in order',
      steps.rows,
    );
    const finalOrder = await db.query(`SELECT status, attempt, xmin::text AS xid FROM compat_orders`);
    check(
      finalOrder.rows.length === 1 &&
        finalOrder.rows[0].status === 'completed' &&
        finalOrder.rows[0].attempt === 2,
      'reserve did not run again after the restart; complete updated the order',
      finalOrder.rows,
    );
    const complete = await stepRow(db, runId, 'complete#1');
    check(
      complete.xid === finalOrder.rows[0].xid,
      "complete's checkpoint committed in the order update's transaction",
      {
        step: complete.xid,
        order: finalOrder.rows[0].xid,
      },
    );
    const ships = await db.query(`SELECT pid FROM compat_events WHERE kind = 'ship' ORDER BY pid`);
    check(
      ships.rows.length === 2 && new Set(ships.rows.map((r) => r.pid)).size === 2,
      'ship (unfinished at the kill) ran once in each life',
      ships.rows,
    );

    if (cls) {
      check(
        output.clsJoined === true,
        'TransactionHost.tx is the step transaction (Durable.manager())',
        output,
      );
      const written = await db.query(`SELECT xmin::text AS xid FROM compat_events WHERE kind = 'cls'`);
      check(
        written.rows.length === 1 && written.rows[0].xid === complete.xid,
        "the @Transactional() write committed in complete's transaction",
        { cls: written.rows, step: complete.xid },
      );
    } else {
      check(output.clsJoined === null, 'no ambient-transaction library in this app', output);
    }
  } finally {
    await db.end();
  }
}

async function stepRow(db, runId, key) {
  const { rows } = await db.query(
    `SELECT status, xmin::text AS xid FROM durable.steps WHERE run_id = $1 AND key = $2`,
    [runId, key],
  );
  return rows[0];
}

function check(condition, what, detail) {
  if (!condition)
    throw new Error(
      `smoke check failed: ${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`,
    );
}

/** Starts `node dist/main.js` in `dir`; its lines go to `log`, and `waitFor` resolves on a matching line. */
function startApp(node, dir, env, log) {
  const child = spawn(node, ['dist/main.js'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  liveApps.add(child);
  const lines = [];
  const waiters = new Set();
  const exited = new Promise((resolve) =>
    child.once('close', (code, signal) => {
      liveApps.delete(child);
      resolve(code ?? signal);
    }),
  );
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        lines.push(line);
        log(`  [pid ${child.pid}] ${line}`);
        for (const waiter of waiters) waiter(line);
      }
    });
  }
  const waitFor = (matches, what) =>
    new Promise((resolve, reject) => {
      const found = lines.find(matches);
      if (found !== undefined) return resolve(found);
      const done = (error, line) => {
        waiters.delete(onLine);
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(line);
      };
      const onLine = (line) => matches(line) && done(undefined, line);
      const timer = setTimeout(
        () => done(new Error(`timed out after ${LIFE_LIMIT_MS} ms waiting for ${what}`)),
        LIFE_LIMIT_MS,
      );
      waiters.add(onLine);
      void exited.then((code) => done(new Error(`the app exited (${code}) while waiting for ${what}`)));
    });
  return { child, exited, waitFor };
}

/**
 * Bench child for the baseline ("raw-pg"): the same work written by hand with node-postgres, on the
 * library's own tables and indexes (the same DDL), with a pool of the same size. Per "workflow":
 * INSERT a start row, K step rows, UPDATE a finish row, each an autocommit statement; a transactional
 * step is BEGIN, business INSERT, checkpoint INSERT, COMMIT on one pooled connection.
 * With BENCH_RAW_PREPARED=1 ("raw-pg-prepared") the INSERTs and UPDATEs are named prepared statements,
 * as the library sends its own; otherwise they are plain parameterized queries, as most code writes them.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { durableTablesSql } from 'nest-durable/persistence/migrations';
import {
  BenchConfig,
  StatementCounter,
  counterDelta,
  cpuMs,
  emit,
  gc,
  loadAverage,
  measure,
  readConfig,
  pressure,
  pressureBetween,
  runConcurrently,
  serverCounters,
  suiteOf,
  warmRound,
} from './support';

const counter = new StatementCounter().install();
const { url, config } = readConfig();
const PREPARED = process.env.BENCH_RAW_PREPARED === '1';
const SYSTEM = PREPARED ? 'raw-pg-prepared' : 'raw-pg';

/** A statement as this variant sends it: named (parsed once per connection) or plain. */
function statement(name: string, text: string, values: unknown[]): pg.QueryConfig {
  return PREPARED ? { name, text, values } : { text, values };
}

const BUSINESS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS public.bench_business (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id text NOT NULL, step text NOT NULL, v integer NOT NULL)`;

const INSERT_RUN = `INSERT INTO durable.runs (id, workflow, version, status, input, executor, epoch, attempts)
  VALUES ($1, $2, '1', 'running', $3::jsonb, 'raw', 1, 1)`;
const INSERT_STEP = `INSERT INTO durable.steps (run_id, key, name, kind, status, output, attempts, started_at, finished_at)
  VALUES ($1, $2, $3, 'step', 'succeeded', $4::jsonb, 1, $5, $6)`;
const FINISH_RUN = `UPDATE durable.runs SET status = 'succeeded', output = $2::jsonb, executor = NULL, updated_at = now()
  WHERE id = $1`;
const INSERT_BUSINESS = 'INSERT INTO public.bench_business (run_id, step, v) VALUES ($1, $2, $3)';

const STEP_NAMES = ['stepA', 'stepB', 'stepC'];

async function main(): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: config.poolSize, application_name: 'bench-raw' });
  for (const statement of durableTablesSql('durable')) await pool.query(statement);
  await pool.query(BUSINESS_TABLE_DDL);

  if (config.workload === 'recovery') return recovery(pool);
  const cases = suiteOf(config).map((c) => workload(pool, c));
  // All warm-ups first: the launcher starts measuring once every system has booted and warmed up.
  for (const w of cases) await runConcurrently(w.config.warmup, w.concurrency, w.workflow);
  gc();
  for (const { config: c, concurrency, workflow } of cases) {
    emit(
      await measure(SYSTEM, c, concurrency, workflow, counter, () =>
        warmRound(concurrency, workflow, pool, c.poolSize),
      ),
    );
  }
  await pool.end();
}

/** One latency/throughput/transactional configuration: the hand-written "workflow" and its concurrency. */
function workload(pool: pg.Pool, config: BenchConfig) {
  const transactional = config.workload === 'transactional';
  const steps = config.steps;

  async function workflow(n: number): Promise<number> {
    const id = randomUUID();
    await pool.query(
      statement('insert_run', INSERT_RUN, [id, steps === 10 ? 'bench10' : 'bench3', JSON.stringify([n])]),
    );
    let v = n;
    for (let k = 1; k <= steps; k++) {
      const name = steps === 3 ? STEP_NAMES[k - 1] : 'step';
      const key = steps === 3 ? `${name}#1` : `${name}#${k}`;
      const startedAt = new Date();
      v = v + 1;
      if (!transactional) {
        await pool.query(
          statement('insert_step', INSERT_STEP, [id, key, name, JSON.stringify(v), startedAt, new Date()]),
        );
        continue;
      }
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(statement('insert_business', INSERT_BUSINESS, [id, key, v - 1]));
        await client.query(
          statement('insert_step', INSERT_STEP, [id, key, name, JSON.stringify(v), startedAt, new Date()]),
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    }
    await pool.query(statement('finish_run', FINISH_RUN, [id, JSON.stringify(v)]));
    return v;
  }

  return { config, workflow, concurrency: config.workload === 'latency' ? 1 : config.concurrency };
}

/**
 * The recovery work by hand, for comparison on this machine: `runs` runs left 'running' by a dead owner with
 * step 1 recorded; `concurrency` workers each claim one (UPDATE ... FOR UPDATE SKIP LOCKED), read its
 * steps, insert steps 2 and 3 and finish it: 5 statements per run.
 */
async function recovery(pool: pg.Pool): Promise<void> {
  await pool.query(
    `INSERT INTO durable.runs (id, workflow, version, status, input, executor, epoch, attempts)
     SELECT 'crash-' || i, 'benchCrash', '1', 'running', jsonb_build_array(i), 'dead', 1, 1 FROM generate_series(0, $1 - 1) i`,
    [config.runs],
  );
  await pool.query(
    `INSERT INTO durable.steps (run_id, key, name, kind, status, output, attempts, started_at, finished_at)
     SELECT 'crash-' || i, 'c1#1', 'c1', 'step', 'succeeded', to_jsonb(i + 1), 1, now(), now() FROM generate_series(0, $1 - 1) i`,
    [config.runs],
  );
  await pool.query('VACUUM ANALYZE durable.runs');
  await pool.query('VACUUM ANALYZE durable.steps');
  const CLAIM = `UPDATE durable.runs r SET status = 'running', executor = 'raw', epoch = r.epoch + 1, attempts = r.attempts + 1,
      updated_at = now()
    FROM (SELECT id FROM durable.runs WHERE status = 'running' AND executor = 'dead' LIMIT 1 FOR UPDATE SKIP LOCKED) due
    WHERE r.id = due.id RETURNING r.id, r.input, r.epoch`;
  const LOAD = `SELECT key, name, kind, status, output, error, attempts, started_at, finished_at
    FROM durable.steps WHERE run_id = $1 ORDER BY started_at, seq`;
  const stats = await pool.connect();
  const serverBefore = await serverCounters(stats);
  const loadBefore = loadAverage();
  const stalls = pressure();
  counter.start();
  const cpu = process.cpuUsage();
  const started = Date.now();
  let done = 0;
  await Promise.all(
    Array.from({ length: config.concurrency }, async () => {
      for (;;) {
        const { rows } = await pool.query(CLAIM);
        if (rows.length === 0) return;
        const id = rows[0].id as string;
        const steps = await pool.query(LOAD, [id]);
        let v = steps.rows[0].output as number;
        for (const name of ['c2', 'c3']) {
          v = v + 1;
          await pool.query(INSERT_STEP, [id, `${name}#1`, name, JSON.stringify(v), new Date(), new Date()]);
        }
        await pool.query(FINISH_RUN, [id, JSON.stringify(v)]);
        done++;
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  const counted = counter.stop();
  const clientCpuMs = cpuMs(cpu);
  const loadAfter = loadAverage();
  const stalled = pressureBetween(stalls, pressure());
  const server = counterDelta(serverBefore, await serverCounters(stats));
  stats.release();
  emit({
    workload: 'recovery',
    system: 'raw-pg',
    steps: 3,
    concurrency: config.concurrency,
    runs: done,
    seconds: Number(seconds.toFixed(3)),
    runs_per_s: Number((done / seconds).toFixed(1)),
    client_cpu_pct: Math.round((clientCpuMs / (seconds * 1000)) * 100),
    client_cpu_ms_per_run: Number((clientCpuMs / done).toFixed(3)),
    load_before: loadBefore,
    load_after: loadAfter,
    ...stalled,
    server,
    wal_bytes_per_run: server.wal_bytes ? Math.round(server.wal_bytes / done) : undefined,
    pool: config.poolSize,
    statements_per_run: Number((counted.total / done).toFixed(2)),
    statements: counted.byLabel,
  });
  await pool.end();
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`bench/raw.ts ${config.workload} failed: ${error.stack ?? error}\n`);
    process.exit(1);
  },
);

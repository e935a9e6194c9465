/**
 * Bench child for DBOS Transact ("dbos", @dbos-inc/dbos-sdk): the same workflows as bench/app.ts, each
 * step a `DBOS.runStep`, on its own database of the same server, with a system-database pool of the
 * same size. Run by scripts/bench.mjs with DATABASE_URL and BENCH_CONFIG; prints one JSON line per result.
 */
import { DBOS, DBOSClient } from '@dbos-inc/dbos-sdk';
import { emit, measure, readConfig, runConcurrently, StatementCounter, suiteOf, warmRound } from './support';

const counter = new StatementCounter().install();
const { url, config } = readConfig();
const QUEUE = 'bench';

const step = (n: number, name: string) => DBOS.runStep(async () => n + 1, { name });

const bench3 = DBOS.registerWorkflow(
  async (n: number) => {
    const a = await step(n, 'stepA');
    const b = await step(a, 'stepB');
    return step(b, 'stepC');
  },
  { name: 'bench3' },
);

const bench10 = DBOS.registerWorkflow(
  async (n: number) => {
    let v = n;
    for (let i = 0; i < 10; i++) v = await step(v, 'step');
    return v;
  },
  { name: 'bench10' },
);

async function launch(): Promise<void> {
  DBOS.setConfig({
    name: 'bench',
    applicationVersion: '1',
    systemDatabaseUrl: url,
    systemDatabasePoolSize: config.poolSize,
    logLevel: 'error',
  });
  await DBOS.launch();
}

/**
 * Each configuration: sequential direct calls (latency) or startWorkflow + getResult at `concurrency`
 * (throughput), after a warm-up.
 */
async function suite(): Promise<void> {
  await launch();
  const cases = suiteOf(config).map((c) => {
    const workflow = c.steps === 10 ? bench10 : bench3;
    const run =
      c.workload === 'latency'
        ? (i: number) => workflow(i)
        : async (i: number) => (await DBOS.startWorkflow(workflow)(i)).getResult();
    return { c, run, concurrency: c.workload === 'latency' ? 1 : c.concurrency };
  });
  // All warm-ups first: the launcher starts measuring once every system has booted and warmed up.
  for (const { c, run, concurrency } of cases) await runConcurrently(c.warmup, concurrency, run);
  for (const { c, run, concurrency } of cases) {
    // DBOS's pool is private: the warm-up runs of each round open its connections.
    emit(await measure('dbos', c, concurrency, run, counter, () => warmRound(concurrency, run)));
  }
  await DBOS.shutdown();
}

/** The worker of the client-latency workload: executes what clients enqueue, until stdin closes. */
async function clientWorker(): Promise<void> {
  await launch();
  await DBOS.registerQueue(QUEUE);
  emit({ event: 'worker-ready' });
  await new Promise<void>((resolve) => process.stdin.on('end', resolve).resume());
  await DBOS.shutdown();
}

/** A client-only process: DBOSClient.enqueue, then the handle's getResult (which polls the database). */
async function client(): Promise<void> {
  const dbos = await DBOSClient.create({ systemDatabaseUrl: url, systemDatabasePoolSize: config.poolSize });
  const run = async (i: number) =>
    (
      await dbos.enqueue<(n: number) => Promise<number>>({ queueName: QUEUE, workflowName: 'bench3' }, i)
    ).getResult();
  await runConcurrently(config.warmup, config.concurrency, run);
  emit(
    await measure('dbos', config, config.concurrency, run, counter, () => warmRound(config.concurrency, run)),
  );
  await dbos.destroy();
}

const workloads: Record<string, () => Promise<void>> = {
  suite,
  'client-worker': clientWorker,
  'client-latency': client,
};

const main = workloads[config.workload];
if (!main) throw new Error(`bench/dbos.ts: unknown workload ${config.workload}`);
main().then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`bench/dbos.ts ${config.workload} failed: ${error.stack ?? error}\n`);
    process.exit(1);
  },
);

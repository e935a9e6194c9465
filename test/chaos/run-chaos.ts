/**
 * `npm run chaos` (through scripts/chaos.mjs): the database-fault scenarios of test/fault-*.spec.ts at
 * full size, each on a PostgreSQL server of its own (test/support/owned-postgres.ts), one summary line
 * each: runs, finished, lost, duplicate transactional rows, re-executions of plain steps, and seconds
 * from the end of the fault to the last run finishing (database clock). Exit code 1 when a scenario
 * lost a run, duplicated a row or saw a worker exit.
 *
 * Arguments: scenario names to run (default all): lost-reply dbhiccup restart outage replica-chaos poison
 */
import { OwnedPostgres } from '../support/owned-postgres';
import {
  dbHiccup,
  FAULT_TIMINGS,
  lostReplies,
  LostReplyKind,
  outage,
  poisonRun,
  replicaChaos,
  ScenarioResult,
  serverRestarts,
} from '../support/fault-scenarios';
import { summaryLine } from '../support/fault-workload';

type Scenario = (
  server: OwnedPostgres,
) => Promise<{ name: string; result: ScenarioResult; extra?: string }[]>;

const database = (server: OwnedPostgres, name: string) => server.createDatabase(`${name}_${Date.now()}`);

const SCENARIOS: Record<string, Scenario> = {
  'lost-reply': async (server) => {
    const kinds: LostReplyKind[] = ['commit', 'checkpoint', 'finish', 'claim', 'start'];
    const lines = [];
    for (const kind of kinds) {
      const result = await lostReplies(await database(server, kind), kind, {
        runs: 100,
        cuts: 10,
        finishMs: 120_000,
      });
      lines.push({ name: `lost-reply ${kind}`, result, extra: `replies lost ${result.lostReplies}` });
    }
    return lines;
  },
  dbhiccup: async (server) => {
    const result = await dbHiccup(await database(server, 'hiccup'), {
      runs: 500,
      hiccups: 10,
      intervalMs: 1_000,
      stepDelayMs: 100,
      finishMs: 180_000,
    });
    return [{ name: 'dbhiccup', result, extra: '10 x pg_terminate_backend' }];
  },
  restart: async (server) => {
    const result = await serverRestarts(server, {
      runs: 500,
      stepDelayMs: 100,
      stops: [
        { mode: 'fast', downMs: 3_000 },
        { mode: 'immediate', downMs: 3_000 },
      ],
      intervalMs: 3_000,
      finishMs: 180_000,
    });
    return [{ name: 'restart', result, extra: 'stops: fast, immediate; 3 s down each' }];
  },
  outage: async (server) => {
    const result = await outage(await database(server, 'outage'), {
      runs: 200,
      stepDelayMs: 100,
      afterMs: 2_000,
      outageMs: 8_000,
      finishMs: 180_000,
    });
    const bound = (FAULT_TIMINGS.LEASE_MS + FAULT_TIMINGS.POLL_MS) / 1000;
    return [{ name: 'outage', result, extra: `8 s; bound lease + poll = ${bound} s` }];
  },
  'replica-chaos': async (server) => {
    const result = await replicaChaos(server, {
      replicas: 4,
      runs: 2_000,
      // Steps of up to 400 ms: runs are in flight through the whole minute of kills, not done before it.
      stepDelayMs: 400,
      chaosMs: 60_000,
      killEveryMs: [1_000, 2_000],
      serverRestartAtMs: 30_000,
      serverDownMs: 3_000,
      finishMs: 300_000,
    });
    return [{ name: 'replica-chaos', result, extra: `${result.kills} SIGKILLs, 1 server restart` }];
  },
  poison: async (server) => {
    const result = await poisonRun(await database(server, 'poison'), {
      replicas: 2,
      others: 100,
      maxRecoveryAttempts: 3,
      setAsideMs: 240_000,
      finishMs: 180_000,
    });
    const outcome = `${result.poison?.status} ${result.poison?.error?.code ?? ''}`.trim();
    return [
      {
        name: 'poison',
        result,
        extra: `poison run ${outcome} after ${result.executions} executions, ${result.deaths} replica deaths`,
      },
    ];
  },
};

async function main(): Promise<number> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !(name in SCENARIOS));
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown scenario(s): ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}\n`,
    );
    return 2;
  }
  const names = wanted.length > 0 ? wanted : Object.keys(SCENARIOS);
  let failed = false;
  const started = Date.now();
  for (const name of names) {
    const server = await OwnedPostgres.create();
    try {
      for (const { name: line, result, extra } of await SCENARIOS[name](server)) {
        const bad =
          result.lost > 0 || result.duplicates > 0 || result.missing > 0 || result.unexpectedExits.length > 0;
        failed ||= bad;
        process.stdout.write(
          `${summaryLine(line, result)}${extra ? `  (${extra})` : ''}${bad ? '  FAILED' : ''}\n`,
        );
        if (bad) {
          process.stdout.write(
            `  statuses ${JSON.stringify(result.statuses)}; exits ${JSON.stringify(result.unexpectedExits)}\n` +
              result.examples.map((example) => `  ${example}\n`).join(''),
          );
          if (process.env.CHAOS_VERBOSE) process.stdout.write(`${result.output}\n`);
        }
      }
    } catch (error) {
      failed = true;
      process.stdout.write(`${name.padEnd(22)} ERROR ${(error as Error).stack ?? error}\n`);
    } finally {
      await server.destroy();
    }
  }
  process.stdout.write(
    `chaos: ${names.length} scenario(s) in ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exit(1);
  },
);

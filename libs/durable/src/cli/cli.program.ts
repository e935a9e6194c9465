import { Command, CommanderError, Option } from 'commander';
import { parseAdminFilter } from '../admin/admin-filter.parser';
import { InvalidArgumentError } from '../errors';
import { FINISHED_STATUSES, type FinishedStatus } from '../retention/retention.options';
import { openCliContext, migrate, type CliConnection, type CliContext } from './cli-context';
import { EXIT, exitCodeOf } from './cli-exit-codes';
import { CliOutput, runsTable, runText } from './cli-output';

/** Streams the program writes to (tests pass their own). */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

const defaultIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
};

/**
 * `nest-durable`: operate durable runs from a shell, on the same store API as the admin module.
 * Returns the exit code (see EXIT).
 * @example await runCli(['runs', 'list', '--status', 'failed', '--json'])
 */
export async function runCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command('nest-durable')
    .description('Operate nest-durable runs: list, inspect, cancel, resume, fork, signal, purge, migrate.')
    .addOption(new Option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL)'))
    .option('--schema <name>', 'schema of the durable tables', 'durable')
    .option('--json', 'print JSON instead of tables', false)
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();

  const connection = (): CliConnection => {
    const { databaseUrl, schema } = program.opts<{ databaseUrl?: string; schema: string }>();
    const url = databaseUrl ?? io.env.DATABASE_URL;
    if (!url) throw new NoDatabaseError('No database: pass --database-url or set DATABASE_URL.');
    return { databaseUrl: url, schema };
  };
  const output = () => new CliOutput(program.opts<{ json: boolean }>().json, io.out);
  /** Runs a command with a client-only context, closed afterwards whatever happens. */
  const withContext =
    (command: (context: CliContext, out: CliOutput) => Promise<number | void>) => async () => {
      const context = await openCliContext(connection());
      try {
        exitCode = (await command(context, output())) ?? EXIT.ok;
      } finally {
        await context.close();
      }
    };

  const runs = program.command('runs').description('list, show and act on runs');
  runs
    .command('list')
    .description('runs newest first, filtered; --after continues a page')
    .option('--status <list>', 'comma-separated statuses (failed,cancelled)')
    .option('--workflow <name>')
    .option('--version <version>')
    .option('--id-prefix <text>', 'ids starting with this text')
    .option('--error <text>', 'error name, code or message containing this text')
    .option('--created-after <time>', 'ISO 8601 time')
    .option('--created-before <time>', 'ISO 8601 time')
    .option('--limit <n>', 'page size (1-500)', '50')
    .option('--after <cursor>', 'the cursor printed after the previous page')
    .action(async (opts: Record<string, string | undefined>) =>
      withContext(async ({ store }, out) => {
        const filter = parseAdminFilter({
          status: opts.status,
          workflow: opts.workflow,
          version: opts.version,
          idPrefix: opts.idPrefix,
          errorText: opts.error,
          createdAfter: opts.createdAfter,
          createdBefore: opts.createdBefore,
          limit: opts.limit,
          after: opts.after,
        });
        const page = await store.listRuns(filter);
        out.result(page, () => runsTable(page.runs) + (page.next ? `\n\nMore: --after ${page.next}` : ''));
      })(),
    );
  runs
    .command('show <id>')
    .description('a run with its steps, signals, parent and children')
    .action(async (id: string) =>
      withContext(async ({ store }, out) => {
        const run = await store.getRun(id);
        if (!run) {
          io.err(`No run with id "${id}".\n`);
          return EXIT.notFound;
        }
        out.result(run, () => runText(run));
      })(),
    );
  runs
    .command('cancel <id>')
    .description('cancel a run and its child runs')
    .option('--reason <text>')
    .action(async (id: string, opts: { reason?: string }) =>
      withContext(async ({ client }, out) => {
        const cancelled = await client.cancel(id, opts.reason);
        out.result({ id, cancelled }, () =>
          cancelled ? `Cancelled ${id}.` : `Run ${id} had already ended.`,
        );
        return cancelled ? EXIT.ok : EXIT.refused;
      })(),
    );
  runs
    .command('resume <id>')
    .description('resume a failed or cancelled run from the step that failed it')
    .action(async (id: string) =>
      withContext(async ({ client }, out) => {
        await client.resume(id);
        out.result({ id, resumed: true }, () => `Resumed ${id}.`);
      })(),
    );
  runs
    .command('fork <id>')
    .description('start a new run with the history recorded before --from-step (nothing: from the start)')
    .option('--from-step <key>', "step key such as 'configureDns#1'")
    .option('--id <newId>', 'id of the new run (default: random)')
    .action(async (id: string, opts: { fromStep?: string; id?: string }) =>
      withContext(async ({ client }, out) => {
        const handle = await client.fork(id, { fromStep: opts.fromStep, id: opts.id });
        out.result({ id: handle.id, forkedFrom: id }, () => `Forked ${id} into ${handle.id}.`);
      })(),
    );
  runs
    .command('signal <id> <name>')
    .description('send a signal to a run that has not finished')
    .option('--payload <json>', 'JSON payload')
    .action(async (id: string, name: string, opts: { payload?: string }) =>
      withContext(async ({ client }, out) => {
        let payload: unknown;
        if (opts.payload !== undefined) {
          try {
            payload = JSON.parse(opts.payload);
          } catch {
            throw new InvalidArgumentError('--payload is not valid JSON.');
          }
        }
        await client.signal(id, name, payload);
        out.result({ id, signal: name, sent: true }, () => `Sent "${name}" to ${id}.`);
      })(),
    );

  program
    .command('purge')
    .description('delete finished runs (with steps and signals) older than --before, in batches')
    .requiredOption('--before <age|time>', "an age ('30d', '12h') or an ISO 8601 time")
    .option('--status <list>', `finished statuses (default: ${FINISHED_STATUSES.join(',')})`)
    .option('--batch-size <n>', 'runs per delete statement', '1000')
    .action(async (opts: { before: string; status?: string; batchSize: string }) =>
      withContext(async ({ client }, out) => {
        const before = /^\d{4}-\d\d-\d\d/.test(opts.before) ? new Date(opts.before) : opts.before;
        const status = opts.status?.split(',').map((s) => s.trim()) as FinishedStatus[] | undefined;
        if (!/^\d+$/.test(opts.batchSize)) throw new InvalidArgumentError('--batch-size must be an integer.');
        const result = await client.purge({ before, status, batchSize: Number(opts.batchSize) });
        out.result(result, () => `Deleted ${result.runs} run(s) in ${result.batches} batch(es).`);
      })(),
    );

  program
    .command('migrate')
    .description("apply the library's migrations (idempotent)")
    .option('--migrations-table <name>', 'TypeORM migrations table', 'migrations')
    .action(async (opts: { migrationsTable: string }) => {
      const applied = await migrate(connection(), opts.migrationsTable);
      output().result({ applied }, () =>
        applied.length ? `Applied ${applied.join(', ')}.` : 'The schema is up to date.',
      );
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const code = error instanceof NoDatabaseError ? EXIT.noDatabase : exitCodeOf(error);
    io.err(`${(error as Error)?.message ?? String(error)}\n`);
    return code;
  }
}

class NoDatabaseError extends Error {}

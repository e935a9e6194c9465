import { INestApplicationContext } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';

/** A promise resolved from outside: lets a test hold a step or workflow at a known point. */
export interface Gate<T = void> {
  promise: Promise<T>;
  open(value: T): void;
  fail(error: unknown): void;
}

export function gate<T = void>(): Gate<T> {
  let open!: (value: T) => void;
  let fail!: (error: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/** A run id unique to this test process, readable in failure output. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

/** Resolves (or rejects) with `promise`, or rejects if it takes longer than `ms`. */
export async function within<T>(ms: number, promise: Promise<T>, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `read` until `accept` holds or `ms` passes; returns the last value read. */
export async function eventually<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  ms = 5_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (accept(value) || Date.now() > until) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` every 50 ms until it returns a value (not undefined), and returns that value; after
 * `timeoutMs` fails with `what` and, when given, what `diagnose` reports (e.g. the runs, the workers' output).
 */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  diagnose?: () => string | Promise<string>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const context = diagnose ? `; ${await diagnose()}` : '';
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${context}`);
    }
    await sleep(50);
  }
}

/** How many of `lines` (e.g. a worker's output) match `pattern`. */
export function countLines(lines: string[], pattern: RegExp): number {
  return lines.filter((line) => pattern.test(line)).length;
}

/** The app's TypeORM DataSource (the default one). */
export function dataSourceOf(app: INestApplicationContext): DataSource {
  return app.get(DataSource);
}

/** Raw rows of a query, straight through the DataSource (no library code involved). */
export async function sql<T = Record<string, unknown>>(
  ds: DataSource,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  return (await ds.query(text, params)) as T[];
}

/**
 * Makes a finished (or running) run claimable again, as a takeover after a crash would, and wakes the
 * workers: the next claim increments its epoch and attempts, loads its steps and replays them.
 */
export async function requeueRun(ds: DataSource, id: string, schema = 'durable'): Promise<void> {
  const rows = await sql(
    ds,
    `WITH requeued AS (
       UPDATE "${schema}".runs SET status = 'pending', executor = NULL, available_at = now(), updated_at = now()
       WHERE id = $1 RETURNING id)
     SELECT pg_notify($2, 'run') FROM requeued`,
    [id, `${schema}_events`],
  );
  if (rows.length !== 1) throw new Error(`requeueRun: no run "${id}" in schema ${schema}`);
}

/**
 * DDL of the tables the worker fixtures write to, created by a test before any worker starts.
 */

/** public.effects of test/fixtures/scenario-worker.ts: one row per execution of a step body. */
export const EFFECTS_TABLE_DDL = `CREATE TABLE public.effects (
    id bigserial PRIMARY KEY, run_id text NOT NULL, label text NOT NULL, step_key text, executor text, pid integer,
    attempt integer, data jsonb, js_ms bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`;

/** public.ticks of test/fixtures/flow-worker.ts: one row per execution of recordTick's step. */
export const TICKS_TABLE_DDL = `CREATE TABLE public.ticks (
    id bigserial PRIMARY KEY, run_id text NOT NULL, tick timestamptz NOT NULL, executor text,
    at timestamptz NOT NULL DEFAULT clock_timestamp())`;

/** public.queue_events of test/fixtures/flow-worker.ts: 'enter' and 'exit' of each execution of queuedWork's step. */
export const QUEUE_EVENTS_TABLE_DDL = `CREATE TABLE public.queue_events (
    id bigserial PRIMARY KEY, run_id text NOT NULL, key text NOT NULL, executor text, kind text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp())`;

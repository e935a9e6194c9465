/**
 * The CPU the library's telemetry path costs per run (`node -r @swc-node/register bench/telemetry-cost.ts`), measured
 * in-process without the database (so other load on the machine hardly moves it). One "run" is what the
 * engine does around a 3-step run besides its SQL: the run.claimed event, the run span, for each step
 * the step span and the step.succeeded event, then run.finished; telemetry on (@opentelemetry/api
 * installed, no SDK registered: the no-op provider; tracing and metrics on) against off. Prints one
 * JSON line per setting: { workload: 'tracing-cpu', system, us_per_run }.
 */
import 'reflect-metadata';
import { ExecutionObserver } from 'nest-durable/engine/execution.observer';
import { DurableEvents } from 'nest-durable/engine/durable.events';
import type { RunExecution } from 'nest-durable/engine/run-execution';
import { runClaimedEvent, runOutcomeEvents, stepEvent } from 'nest-durable/events/run-outcome-events';
import { DurableMetrics, DurableTracing, QueueStats } from 'nest-durable/telemetry';
import type { DurableOptionsHolder } from 'nest-durable/durable.options';
import { emit, round } from './support';

const RUNS = 100_000;
const ROUNDS = 5;

const execution = {
  run: { id: 'run-1', workflow: 'bench3', version: '1', attempts: 1, trace_context: null },
  lease: { runId: 'run-1', executorId: 'bench', epoch: 1 },
  halted: undefined,
  ending: true,
} as unknown as RunExecution;
const ended = { id: 'run-1', status: 'succeeded' as const, output: 3 };
const steps = ['stepA', 'stepB', 'stepC'].map((name) => ({
  key: `${name}#1`,
  name,
  kind: 'step' as const,
  attempt: 1,
}));

function setup(on: boolean): () => Promise<void> {
  const options = {
    value: { tracing: on, metrics: on, queueMetricsIntervalMs: 5_000 },
  } as DurableOptionsHolder;
  const events = new DurableEvents();
  const observer = on ? new DurableTracing(options) : new ExecutionObserver();
  new DurableMetrics(events, {} as QueueStats, options).onModuleInit();
  const body = () => Promise.resolve(1);
  return async () => {
    events.emit(runClaimedEvent(execution));
    await observer.run(execution, async () => {
      for (const step of steps) {
        const began = performance.now();
        await observer.stepAttempt(execution, step, body);
        events.emit(stepEvent('step.succeeded', execution, step, performance.now() - began));
      }
      return ended;
    });
    for (const event of runOutcomeEvents(execution, ended)) events.emit(event);
  };
}

async function cpuPerRun(run: () => Promise<void>): Promise<number> {
  const cpu = process.cpuUsage();
  for (let i = 0; i < RUNS; i++) await run();
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / RUNS;
}

void (async () => {
  const settings = { durable: setup(true), 'durable-telemetry-off': setup(false) };
  for (const run of Object.values(settings)) for (let i = 0; i < RUNS / 2; i++) await run(); // warm-up
  const samples: Record<string, number[]> = { durable: [], 'durable-telemetry-off': [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [system, run] of Object.entries(settings)) samples[system].push(await cpuPerRun(run));
  }
  for (const [system, values] of Object.entries(samples)) {
    const sorted = [...values].sort((a, b) => a - b);
    emit({ workload: 'tracing-cpu', system, steps: 3, us_per_run: round(sorted[Math.floor(ROUNDS / 2)], 3) });
  }
})();

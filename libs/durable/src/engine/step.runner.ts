import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { durableScope, DurableScope, TransactionContext } from '../context';
import { PARK_RETRY_AFTER_MS } from '../durable.constants';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import type { StepMetadata } from '../decorators';
import {
  LeaseLostError,
  NonSerializableError,
  PayloadTooLargeError,
  RecordedError,
  ReplayMismatchError,
  RunCancelledError,
  StartNotCommittedError,
  StepTimeoutError,
} from '../errors';
import type { StepKind } from '../interfaces';
import { DurableStore } from '../persistence/durable.store';
import { decodeJson, encodeJson } from '../persistence/json-codec';
import type { StepRecord } from '../persistence/row-types';
import { toErrorInfo } from './error-info';
import { delay, retryDelay, setLongTimeout } from './retry-delay';
import { assertInHistory } from './replay';
import { RunExecution } from './run-execution';
import { CheckpointWriter } from './checkpoint.writer';
import { DurableEvents } from './durable.events';
import { ExecutionObserver } from './execution.observer';
import { stepEvent } from '../events/run-outcome-events';

/** Errors that end a step at once, whatever its retry policy says. */
const NEVER_RETRIED = [
  NonSerializableError,
  PayloadTooLargeError,
  ReplayMismatchError,
  RunCancelledError,
  LeaseLostError,
  StartNotCommittedError,
];

/** Serialization failures and deadlocks retry a transactional step up to this many attempts in all. */
const TRANSACTION_CONFLICT_ATTEMPTS = 10;
const TRANSACTION_CONFLICT_CODES = new Set(['40001', '40P01']);

/**
 * Runs one @Step call of a workflow: replays its recorded outcome, or executes it with retries and
 * records the outcome with a single fenced INSERT (inside the step's own transaction when transactional).
 */
@Injectable()
export class StepRunner {
  constructor(
    private readonly transactions: TransactionContext,
    private readonly store: DurableStore,
    private readonly checkpoints: CheckpointWriter,
    private readonly options: DurableOptionsHolder,
    private readonly events: DurableEvents,
    private readonly observer: ExecutionObserver,
  ) {}

  async run(
    execution: RunExecution,
    meta: StepMetadata,
    call: () => Promise<unknown>,
    kind: StepKind = 'step',
    /** Arguments to keep with the checkpoint, for a compensable step. */
    undoArgs?: unknown[],
  ): Promise<unknown> {
    execution.throwIfHalted();
    const key = execution.nextKey(meta.name);
    const recorded = execution.takeRecorded(key);
    if (recorded?.status === 'succeeded') return decodeJson(recorded.output);
    if (recorded?.status === 'failed') throw execution.markStepError(new RecordedError(recorded.error!), key);
    if (!recorded && !execution.compensating) await assertInHistory(execution, key);

    const startedAt = recorded?.started_at ?? new Date();
    for (let attempt = (recorded?.attempts ?? 0) + 1; ; attempt++) {
      execution.throwIfHalted();
      const step = { key, name: meta.name, kind, attempt };
      const began = performance.now();
      try {
        const output = await this.observer.stepAttempt(execution, step, () =>
          this.attempt(execution, meta, key, kind, attempt, startedAt, call, undoArgs),
        );
        this.events.emit(stepEvent('step.succeeded', execution, step, performance.now() - began));
        return output;
      } catch (error) {
        execution.throwIfHalted();
        const conflict =
          meta.transactional &&
          TRANSACTION_CONFLICT_CODES.has((error as { code?: string })?.code ?? '') &&
          attempt < TRANSACTION_CONFLICT_ATTEMPTS;
        const retryable =
          conflict ||
          (attempt < meta.retry.maxAttempts &&
            !NEVER_RETRIED.some((type) => error instanceof type) &&
            !meta.retry.nonRetryable.some((type) => error instanceof type));
        const record = this.outcome(meta, key, kind, retryable ? 'retrying' : 'failed', attempt, startedAt);
        const info = toErrorInfo(error);
        record.error = JSON.stringify(info);
        await this.checkpoints.write(execution, record);
        const type = retryable ? 'step.retrying' : 'step.failed';
        this.events.emit(stepEvent(type, execution, step, performance.now() - began, info));
        if (!retryable) throw execution.markStepError(error, key);
        const wait = retryDelay(meta.retry, attempt);
        if (wait > PARK_RETRY_AFTER_MS) await this.checkpoints.park(execution, 'sleeping', wait);
        await delay(wait, execution.signal);
      }
    }
  }

  private async attempt(
    execution: RunExecution,
    meta: StepMetadata,
    key: string,
    kind: StepKind,
    attempt: number,
    startedAt: Date,
    call: () => Promise<unknown>,
    undoArgs: unknown[] | undefined,
  ): Promise<unknown> {
    // Without a step timeout the run's own signal is the step's: no per-step controller or listener.
    let signal = execution.signal;
    let guard = execution.whenHalted;
    let timer: { clear(): void } | undefined;
    if (meta.timeoutMs !== undefined) {
      const ms = meta.timeoutMs;
      const timeout = new AbortController();
      signal = AbortSignal.any([execution.signal, timeout.signal]);
      timer = setLongTimeout(() => timeout.abort(new StepTimeoutError(messages.stepTimeout(key, ms))), ms);
      guard = new Promise<never>((_, reject) => {
        if (signal.aborted) return reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
      guard.catch(() => undefined);
    }
    const scope = (manager?: EntityManager): DurableScope => ({
      execution,
      step: { name: meta.name, key, attempt, signal, idempotencyKey: `${execution.runId}:${key}`, manager },
    });
    const record = (output: unknown) => {
      const step = this.outcome(meta, key, kind, 'succeeded', attempt, startedAt);
      const { maxPayloadBytes } = this.options.value;
      step.output = encodeJson(output, `Output of step "${key}"`, maxPayloadBytes);
      if (undoArgs)
        step.undoArgs = encodeJson(undoArgs, `Arguments of compensable step "${key}"`, maxPayloadBytes);
      return step;
    };
    try {
      if (!meta.transactional) {
        const body = durableScope.run(scope(), call);
        body.catch(() => undefined);
        const output = await Promise.race([body, guard]);
        const step = record(output);
        await this.checkpoints.write(execution, step);
        return decodeJson(JSON.parse(step.output!));
      }
      // Body, fencing check and checkpoint commit together: a lost lease rolls the business writes back.
      const bound = this.store.transactionBound(this.options.value.leaseMs);
      return await this.transactions.run(meta.isolation, bound, async (manager) => {
        sealOnAbort(manager, signal);
        const body = durableScope.run(scope(manager), call);
        body.catch(() => undefined);
        const output = await Promise.race([body, guard]);
        const step = record(output);
        const stored = await this.store.recordStep(execution.lease, step, manager);
        if (!stored) throw await this.checkpoints.refused(execution);
        return decodeJson(JSON.parse(step.output!));
      });
    } finally {
      timer?.clear();
    }
  }

  private outcome(
    meta: StepMetadata,
    key: string,
    kind: StepKind,
    status: StepRecord['status'],
    attempts: number,
    startedAt: Date,
  ): StepRecord {
    return {
      key,
      name: meta.name,
      kind,
      status,
      output: null,
      error: null,
      attempts,
      startedAt,
      finishedAt: new Date(),
    };
  }
}

/**
 * Once a transactional step is aborted (cancel, lease lost, timeout), its transaction is rolled back
 * while the body may still be running: from then on the body's queries on that connection fail, so
 * none can run after the ROLLBACK, outside the transaction, in autocommit.
 */
function sealOnAbort(manager: EntityManager, signal: AbortSignal): void {
  const runner = manager.queryRunner;
  if (!runner) return;
  const query = runner.query.bind(runner) as (sql: string, ...rest: unknown[]) => Promise<unknown>;
  runner.query = ((sql: string, ...rest: unknown[]) =>
    signal.aborted && !/^\s*(ROLLBACK|RELEASE)\b/i.test(sql)
      ? Promise.reject(signal.reason)
      : query(sql, ...rest)) as typeof runner.query;
}

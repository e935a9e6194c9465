import { Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import type { EntityManager } from 'typeorm';
import { durableScope, DurableScope, TransactionContext } from '../context';
import { PARK_RETRY_AFTER_MS } from '../durable.constants';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import type { StepMetadata } from '../decorators';
import {
  HistoryLimitError,
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
import { decodeJson, encodeJson } from '../persistence/json-codec';
import type { StepRecord, StepRow } from '../persistence/row-types';
import { transactionLost, transactionLostError } from '../persistence/durable.database';
import { StepStore } from '../persistence/step.store';
import { stepEvent } from '../events/run-outcome-events';
import { CheckpointWriter } from './checkpoint.writer';
import { DurableEvents } from './durable.events';
import { ExecutionObserver } from './execution.observer';
import { toErrorInfo } from './error-info';
import { assertInHistory } from './replay';
import { delay, retryDelay, setLongTimeout } from './retry-delay';
import { RunExecution } from './run-execution';
import { isTransient } from './transient-errors';

/** Errors that end a step at once, whatever its retry policy says. */
const NEVER_RETRIED = [
  NonSerializableError,
  PayloadTooLargeError,
  HistoryLimitError,
  ReplayMismatchError,
  RunCancelledError,
  LeaseLostError,
  StartNotCommittedError,
];

/** Serialization failures and deadlocks retry a transactional step up to this many attempts in all. */
const TRANSACTION_CONFLICT_ATTEMPTS = 10;
const TRANSACTION_CONFLICT_CODES = new Set(['40001', '40P01']);
/** A transactional step whose connection was lost retries this many times without using its budget. */
const CONNECTION_LOSS_ATTEMPTS = 20;

/** Thrown inside a step transaction whose checkpoint was refused: rolls the body back. */
class CheckpointRefused extends Error {}

/**
 * Runs one @Step call of a workflow: replays its recorded outcome, or executes it with retries and
 * records the outcome with a single fenced INSERT (inside the step's own transaction when transactional).
 *
 * Unknown outcomes: when a transactional attempt fails with a lost connection, its COMMIT may have
 * landed. The attempt's failure record is an upsert of the same step key, which waits for that
 * transaction if it is still in flight and refuses to overwrite a succeeded row: so the record itself
 * tells whether the step committed, and a committed step is never executed again.
 */
@Injectable()
export class StepRunner {
  constructor(
    private readonly transactions: TransactionContext,
    private readonly steps: StepStore,
    private readonly checkpoints: CheckpointWriter,
    private readonly options: DurableOptionsHolder,
    private readonly events: DurableEvents,
    private readonly observer: ExecutionObserver,
  ) {}

  run(
    execution: RunExecution,
    meta: StepMetadata,
    call: () => Promise<unknown>,
    kind: StepKind = 'step',
    /** Arguments to keep with the checkpoint, for a compensable step. */
    undoArgs?: unknown[],
  ): Promise<unknown> {
    return execution.waitSet.track(() => this.runTracked(execution, meta, call, kind, undoArgs));
  }

  private async runTracked(
    execution: RunExecution,
    meta: StepMetadata,
    call: () => Promise<unknown>,
    kind: StepKind,
    undoArgs: unknown[] | undefined,
  ): Promise<unknown> {
    execution.throwIfHalted();
    const key = execution.nextKey(meta.name);
    const recorded = execution.takeRecorded(key);
    if (recorded?.status === 'succeeded') return decodeJson(recorded.output);
    if (recorded?.status === 'failed') throw execution.markStepError(new RecordedError(recorded.error!), key);
    if (!recorded && !execution.compensating) await assertInHistory(execution, key);

    const started = performance.now();
    const step = { execution, meta, key, kind, started, call, undoArgs, isNew: !recorded };
    const base = recorded?.attempts_base ?? 0;
    let connectionLosses = 0;
    for (let attempt = (recorded?.attempts ?? 0) + 1; ; attempt++) {
      execution.throwIfHalted();
      const observed = { key, name: meta.name, kind, attempt };
      const began = performance.now();
      let failure: unknown;
      try {
        const output = await this.observer.stepAttempt(execution, observed, () =>
          this.attempt(step, attempt),
        );
        this.events.emit(stepEvent('step.succeeded', execution, observed, performance.now() - began));
        return output;
      } catch (error) {
        execution.throwIfHalted();
        failure = error;
      }
      const code = (failure as { code?: string })?.code ?? '';
      const conflict =
        meta.transactional &&
        TRANSACTION_CONFLICT_CODES.has(code) &&
        attempt - base < TRANSACTION_CONFLICT_ATTEMPTS;
      const lostConnection =
        meta.transactional &&
        !conflict &&
        isTransient(failure) &&
        connectionLosses < CONNECTION_LOSS_ATTEMPTS;
      if (lostConnection) connectionLosses++;
      const retryable =
        conflict ||
        lostConnection ||
        (attempt - base - connectionLosses < meta.retry.maxAttempts &&
          !NEVER_RETRIED.some((type) => failure instanceof type) &&
          !meta.retry.nonRetryable.some((type) => failure instanceof type));
      const record = this.record(step, retryable ? 'retrying' : 'failed', attempt);
      const info = toErrorInfo(failure);
      record.error = JSON.stringify(info);
      // Also resolves a lost COMMIT: this upsert waits for that transaction and keeps a succeeded row.
      const succeeded = await this.engineWrite(execution, () => this.checkpoints.write(execution, record));
      if (succeeded) return this.adopt(execution, succeeded);
      const type = retryable ? 'step.retrying' : 'step.failed';
      this.events.emit(stepEvent(type, execution, observed, performance.now() - began, info));
      if (!retryable) throw execution.markStepError(failure, key);
      const wait = retryDelay(meta.retry, attempt - base);
      if (wait > PARK_RETRY_AFTER_MS) {
        await execution.waitSet.block({ kind: 'sleep', wakeAt: execution.clock.now() + wait });
      } else {
        await delay(wait, execution.signal);
      }
    }
  }

  private async attempt(step: StepCall, attempt: number): Promise<unknown> {
    const { execution, meta, key } = step;
    if (step.isNew && attempt === 1 && execution.historySteps >= execution.limits.maxSteps) {
      throw new HistoryLimitError(messages.historySteps(execution.runId, key, execution.limits.maxSteps));
    }
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
    try {
      if (!meta.transactional) {
        const body = durableScope.run(scope(), step.call);
        body.catch(() => undefined);
        const record = this.succeeded(step, attempt, await Promise.race([body, guard]));
        const succeeded = await this.engineWrite(execution, () => this.checkpoints.write(execution, record));
        return succeeded ? this.adopt(execution, succeeded) : this.written(execution, step, record);
      }
      // Body, fencing check and checkpoint commit together: a lost lease rolls the business writes back.
      const bound = this.steps.transactionBound(this.options.value.leaseMs);
      let record: StepRecord | undefined;
      let transaction: EntityManager | undefined;
      try {
        await this.transactions.run(meta.isolation, bound, async (manager) => {
          transaction = manager;
          sealOnAbort(manager, signal);
          const body = durableScope.run(scope(manager), step.call);
          body.catch(() => undefined);
          record = this.succeeded(step, attempt, await Promise.race([body, guard]));
          const progress = execution.progressPending;
          if (!(await this.steps.recordStep(execution.lease, record, manager, progress))) {
            throw new CheckpointRefused();
          }
        });
      } catch (error) {
        // The body's own statement on a transaction whose connection died fails with TypeORM's
        // "already released" error: a lost connection all the same, retried without using the budget.
        if (transactionLost(transaction) && !isTransient(error)) throw transactionLostError(error);
        if (!(error instanceof CheckpointRefused)) throw error;
        const succeeded = await this.checkpoints.succeededStep(execution, key);
        if (succeeded) return this.adopt(execution, succeeded);
        throw await this.checkpoints.refused(execution);
      }
      execution.progressPending = false;
      return this.written(execution, step, record!);
    } finally {
      timer?.clear();
    }
  }

  /** The record of a successful attempt; refuses an output that cannot be stored or crosses the caps. */
  private succeeded(step: StepCall, attempt: number, output: unknown): StepRecord {
    const { execution, key } = step;
    const { maxPayloadBytes } = this.options.value;
    const record = this.record(step, 'succeeded', attempt);
    record.output = encodeJson(output, `Output of step "${key}"`, maxPayloadBytes);
    if (step.undoArgs) {
      record.undoArgs = encodeJson(step.undoArgs, `Arguments of compensable step "${key}"`, maxPayloadBytes);
    }
    const bytes = Buffer.byteLength(record.output) + Buffer.byteLength(record.undoArgs ?? '');
    if (execution.historyBytes + bytes > execution.limits.maxBytes) {
      throw new HistoryLimitError(messages.historyBytes(execution.runId, key, execution.limits.maxBytes));
    }
    return record;
  }

  /** After the checkpoint of a successful attempt: the value the workflow gets (as a replay would). */
  private written(execution: RunExecution, step: StepCall, record: StepRecord): unknown {
    if (step.isNew) execution.historySteps++;
    execution.historyBytes += Buffer.byteLength(record.output!) + Buffer.byteLength(record.undoArgs ?? '');
    return decodeJson(JSON.parse(record.output!));
  }

  /** A step found already succeeded (a write of unknown outcome that landed): its recorded output. */
  private adopt(execution: RunExecution, row: StepRow): unknown {
    execution.progressPending = false;
    return decodeJson(row.output);
  }

  /**
   * A write of the engine's own (not the step body's): its failure is not the step's. Transient errors
   * were retried already; anything else stops the execution, and the run is released.
   */
  private async engineWrite<T>(execution: RunExecution, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      execution.halt('failed-write', error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  }

  private record(step: StepCall, status: StepRecord['status'], attempts: number): StepRecord {
    return {
      key: step.key,
      name: step.meta.name,
      kind: step.kind,
      status,
      output: null,
      error: null,
      attempts,
      elapsedMs: performance.now() - step.started,
    };
  }
}

interface StepCall {
  execution: RunExecution;
  meta: StepMetadata;
  key: string;
  kind: StepKind;
  /** performance.now() when this execution started the step. */
  started: number;
  call: () => Promise<unknown>;
  undoArgs: unknown[] | undefined;
  /** No row of it was recorded before this execution. */
  isNew: boolean;
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

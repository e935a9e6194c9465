import { Injectable } from '@nestjs/common';
import { messages } from '../durable.messages';
import { LeaseLostError, RunCancelledError } from '../errors';
import { DurableStore } from '../persistence/durable.store';
import type { StepRecord } from '../persistence/row-types';
import { delay } from './retry-delay';
import { RunExecution } from './run-execution';
import { RunParked } from './run-parked';

const WRITE_RETRIES_MS = [100, 400, 1600];

/** Errors worth writing again: a lost connection, a server restarting, a transaction conflict. */
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string') {
    return (
      code.startsWith('08') ||
      [
        '57P01',
        '57P02',
        '57P03',
        '53300',
        '40001',
        '40P01',
        'ECONNRESET',
        'ECONNREFUSED',
        'ETIMEDOUT',
        'EPIPE',
      ].includes(code)
    );
  }
  return /Connection terminated|connection timeout|Client has encountered a connection error/i.test(
    String((error as Error)?.message),
  );
}

/**
 * Writes checkpoints of an execution outside transactions: fenced, retried on transient database
 * errors, and turning a refused write into the halt of the execution (lease lost or cancelled).
 */
@Injectable()
export class CheckpointWriter {
  constructor(private readonly store: DurableStore) {}

  async write(execution: RunExecution, step: StepRecord): Promise<void> {
    const stored = await this.withRetries(() => this.store.recordStep(execution.lease, step));
    if (!stored) throw await this.refused(execution);
  }

  /** Parks the run until `wakeInMs` from now and halts this execution. Always throws. */
  async park(execution: RunExecution, status: 'sleeping' | 'waiting', wakeInMs: number): Promise<never> {
    const parked = await this.withRetries(() => this.store.parkRun(execution.lease, status, wakeInMs));
    if (!parked) throw await this.refused(execution);
    const signal = new RunParked(execution.runId);
    execution.halt('parked', signal);
    throw signal;
  }

  /** Why a fenced write was refused: the run was cancelled, or another executor owns it now. */
  async refused(execution: RunExecution): Promise<Error> {
    const run = await this.store.getRun(execution.runId);
    if (run?.status === 'cancelled') {
      const reason = run.error?.message;
      const error = new RunCancelledError(
        messages.runCancelled(execution.runId, reason),
        execution.runId,
        reason,
      );
      execution.halt('cancelled', error);
      return error;
    }
    const error = new LeaseLostError(messages.leaseLost(execution.runId, execution.lease.epoch));
    execution.halt('lease-lost', error); // logged from the run.lease-lost event
    return error;
  }

  /** Another process ended the run (a cancel, usually): if it was cancelled, stop the step in flight. */
  async haltIfCancelled(execution: RunExecution): Promise<void> {
    // An execution claimed to run a cancelled run's compensations must not stop for that same cancel.
    if (execution.halted || execution.run.compensating) return;
    const run = await this.store.getRun(execution.runId);
    if (run?.status !== 'cancelled') return;
    const reason = run.error?.message;
    execution.halt(
      'cancelled',
      new RunCancelledError(messages.runCancelled(execution.runId, reason), execution.runId, reason),
    );
  }

  /** Runs a fenced write, again after a transient database error (it must be idempotent). */
  async withRetries<T>(write: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await write();
      } catch (error) {
        if (attempt >= WRITE_RETRIES_MS.length || !isTransient(error)) throw error;
        await delay(WRITE_RETRIES_MS[attempt]);
      }
    }
  }
}

import { Injectable } from '@nestjs/common';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import {
  RecordedError,
  ResultTimeoutError,
  RunCancelledError,
  RunNotFoundError,
  WorkflowFailedError,
} from '../errors';
import { DurableStore } from '../persistence/durable.store';
import { decodeJson } from '../persistence/json-codec';
import { isFinished } from '../interfaces';
import type { RunRow } from '../persistence/row-types';
import { DurableEvents, RunEnded } from './durable.events';
import { setLongTimeout } from './retry-delay';

/**
 * Waits for a run's end without polling: in-process completion events for runs executed here, NOTIFY
 * 'done:<id>' for runs executed elsewhere, and a slow poll only as a safety net.
 */
@Injectable()
export class RunResultWaiter {
  constructor(
    private readonly store: DurableStore,
    private readonly events: DurableEvents,
    private readonly options: DurableOptionsHolder,
  ) {}

  /**
   * `localExecution` settles when this process stops executing the run (if it does now): while it
   * runs, its own end event answers, so notifications need no read.
   */
  wait<R>(id: string, timeoutMs: number | undefined, localExecution?: Promise<void>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let settled = false;
      let checking = false;
      let checkAgain = false;
      let executingHere = localExecution !== undefined;
      const cleanup: (() => void)[] = [];
      const finish = (settle: () => void) => {
        if (settled) return;
        settled = true;
        cleanup.forEach((fn) => fn());
        settle();
      };
      const fromEnded = (ended: RunEnded) =>
        finish(() => {
          try {
            resolve(outcome<R>(ended));
          } catch (error) {
            reject(error);
          }
        });
      const check = async (): Promise<void> => {
        if (settled || executingHere) return;
        if (checking) {
          checkAgain = true; // a notification during a read: read again after it, never drop it
          return;
        }
        checking = true;
        try {
          const row = await this.store.getRun(id);
          if (!row) return finish(() => reject(new RunNotFoundError(messages.runNotFound(id))));
          if (isFinished(row.status)) fromEnded(endedFromRow(row));
        } catch (error) {
          finish(() => reject(error));
        } finally {
          checking = false;
        }
        if (checkAgain) {
          checkAgain = false;
          await check();
        }
      };
      // Listen first, then look: an end between the two is not missed.
      cleanup.push(this.events.onRunEnded(id, (ended) => (ended ? fromEnded(ended) : void check())));
      cleanup.push(this.events.onReconnected(() => void check()));
      const startPolling = () => {
        if (settled) return;
        const poll = setInterval(() => void check(), this.options.value.pollIntervalMs * 10);
        cleanup.push(() => clearInterval(poll));
      };
      if (timeoutMs !== undefined) {
        const timer = setLongTimeout(
          () => finish(() => reject(new ResultTimeoutError(messages.resultTimeout(id, timeoutMs)))),
          timeoutMs,
        );
        cleanup.push(() => timer.clear());
      }
      if (localExecution) {
        // Parked, fenced or released here: from then on the database and NOTIFY tell.
        void localExecution.then(() => {
          executingHere = false;
          startPolling();
          return check();
        });
      } else {
        startPolling();
        void check();
      }
    });
  }
}

/** What a finished run's row says. A succeeded run's output is always stored (JSON null included). */
export function endedFromRow(row: RunRow): RunEnded {
  return {
    id: row.id,
    status: row.status as RunEnded['status'],
    output: row.status === 'succeeded' ? decodeJson(row.output) : undefined,
    error: row.error,
  };
}

function outcome<R>(ended: RunEnded): R {
  if (ended.status === 'succeeded') return ended.output as R;
  if (ended.status === 'cancelled') {
    const reason = ended.error?.message;
    throw new RunCancelledError(messages.runCancelled(ended.id, reason), ended.id, reason);
  }
  const cause = new RecordedError(ended.error ?? { name: 'Error', message: 'unknown error' });
  throw new WorkflowFailedError(
    messages.workflowFailed(ended.id, `${cause.name}: ${cause.message}`),
    ended.id,
    cause,
  );
}

import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { durableScope, TransactionContext } from './context';
import { DEFAULT_VERSION, WORKFLOW_NAME_SYMBOL } from './durable.constants';
import { messages } from './durable.messages';
import { DurableOptionsHolder } from './durable.options';
import { DurableWorker } from './durable.worker';
import { toMilliseconds, toOptionalMilliseconds, type Duration } from './duration';
import { DurableEvents } from './engine/durable.events';
import { ExecutionObserver } from './engine/execution.observer';
import { RunResultWaiter } from './engine/run-result.waiter';
import { RunEvents, RunStreamItem, RunStreamOptions } from './events/run-events';
import {
  InvalidArgumentError,
  LimitExceededError,
  RunConflictError,
  RunNotFoundError,
  RunStateError,
  StartNotCommittedError,
} from './errors';
import { isFinished, RUN_STATUSES } from './interfaces';
import type {
  ListRunsOptions,
  ResultOptions,
  RunInfo,
  RunPage,
  StartOptions,
  StepInfo,
  WorkflowHandle,
} from './interfaces';
import { DurableStore, NewRun } from './persistence/durable.store';
import { decodeJson, encodeJson } from './persistence/json-codec';
import { RunControlStore } from './persistence/run-control.store';
import { StepStore } from './persistence/step.store';
import { untilAnswered } from './engine/until-answered';
import type { RunRow, StepRow } from './persistence/row-types';
import { MessageSender } from './messaging/message.sender';
import { QueueClaim, resolveFlowStart, StartStore } from './queues';
import { DurableSchedules } from './schedules/durable-schedules';
import { assertValidId } from './validation';
import { WorkflowRegistry } from './workflow.registry';
import { DurableAdminStore } from './admin/admin.store';
import type { ForkOptions } from './admin/admin.interfaces';
import { DEFAULT_PURGE_BATCH, FINISHED_STATUSES, RetentionService } from './retention';
import type { FinishedStatus, PurgeResult } from './retention';

const MAX_PAGE = 1_000;
/** How long start() keeps retrying a lost connection before it gives the error to the caller. */
const START_RETRY_MS = 5_000;

/** A workflow to start: its registered name, or the decorated method itself (`service.provision`). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type WorkflowRef = string | ((...args: any[]) => unknown);

/**
 * Starts runs and reads their state. Inject it anywhere once DurableModule is imported.
 * @example
 * const handle = await client.start('provisionTenant', [tenantId], { id: `tenant:${tenantId}` });
 * const result = await handle.result({ timeout: '30s' });
 */
@Injectable()
export class DurableClient {
  constructor(
    private readonly store: DurableStore,
    private readonly registry: WorkflowRegistry,
    private readonly worker: DurableWorker,
    private readonly waiter: RunResultWaiter,
    private readonly options: DurableOptionsHolder,
    private readonly transactions: TransactionContext,
    private readonly control: RunControlStore,
    private readonly bus: DurableEvents,
    private readonly observer: ExecutionObserver,
    private readonly runEvents: RunEvents,
    /** Cron schedules: create, pause, resume, delete, trigger, get, list. */
    readonly schedules: DurableSchedules,
    private readonly sender: MessageSender,
    private readonly starts: StartStore,
    private readonly admin: DurableAdminStore,
    private readonly retention: RetentionService,
    private readonly steps: StepStore,
    private readonly queues: QueueClaim,
  ) {}

  /**
   * Starts a run, or returns the existing run with that id. With a `manager` (or inside a transactional
   * step) the run is inserted in that transaction and exists only once it commits.
   */
  async start<R = unknown>(
    workflow: WorkflowRef,
    args: unknown[] = [],
    opts: StartOptions = {},
  ): Promise<WorkflowHandle<R>> {
    const name = this.workflowName(workflow);
    if (!Array.isArray(args))
      throw new InvalidArgumentError(`start("${name}") expects the workflow's arguments as an array.`);
    const id = opts.id === undefined ? randomUUID() : opts.id;
    assertValidId('run id', id);
    const scope = durableScope.getStore();
    const registered = this.registry.latest(name);
    const run: NewRun = {
      id,
      workflow: name,
      version: registered?.version ?? DEFAULT_VERSION,
      input: encodeJson(args, `Input of workflow "${name}"`, this.options.value.maxPayloadBytes),
      timeoutMs: toOptionalMilliseconds(opts.timeout) ?? registered?.timeoutMs,
      parentId: scope?.step ? scope.execution.runId : undefined,
      traceContext: this.observer.startContext(),
    };
    const manager = opts.manager ?? this.transactions.ambientManager();
    // Queued runs are never executed inline: only the claim admits them, within the queue's limits.
    const flow = resolveFlowStart(name, opts, this.queues.names, registered?.queue);
    if (flow) {
      const started = await this.starts.insert(run, flow, manager);
      if (started.workflow !== name)
        throw new RunConflictError(messages.runConflict(started.id, started.workflow, name));
      return this.handleFor<R>(started.id, manager);
    }
    if (manager) {
      // The caller's transaction: its outcome is the caller's to handle, so no retry here.
      if (await this.store.insertPendingRun(run, manager)) this.started(run);
      else await this.assertSameWorkflow(id, name, manager);
      return this.handleFor<R>(id, manager);
    }
    // Retried on a lost connection: a start whose reply was lost finds its run by id (an id is an
    // idempotency key); a run it had claimed for this process is released by the worker's sweep.
    return untilAnswered(
      async () => {
        if (registered && this.worker.reserveSlot()) {
          // Executed here at once: the INSERT is the claim, so a run costs one write to start.
          let claimed;
          try {
            claimed = await this.store.insertOwnedRun(run, this.options.value.executorId);
          } catch (error) {
            this.worker.releaseSlot();
            throw error;
          }
          if (claimed) {
            this.started(run);
            this.worker.executeReserved(claimed);
            return this.handleFor<R>(id);
          }
          this.worker.releaseSlot();
        } else if (await this.store.insertPendingRun(run)) {
          this.started(run);
          return this.handleFor<R>(id);
        }
        await this.assertSameWorkflow(id, name);
        return this.handleFor<R>(id);
      },
      { giveUpAfterMs: START_RETRY_MS },
    );
  }

  /** Starting an existing id returns that run, unless it belongs to another workflow. */
  private async assertSameWorkflow(id: string, name: string, manager?: EntityManager): Promise<void> {
    const existing = await this.store.findRunWorkflow(id, manager);
    if (existing !== undefined && existing !== name)
      throw new RunConflictError(messages.runConflict(id, existing, name));
  }

  private started(run: NewRun): void {
    const { id: runId, workflow, version, parentId } = run;
    this.bus.emit({ type: 'run.started', runId, workflow, version, parentId });
  }

  /** A handle on a run by id (not checked until used). */
  handle<R = unknown>(id: string): WorkflowHandle<R> {
    assertValidId('run id', id);
    return this.handleFor<R>(id);
  }

  private handleFor<R>(id: string, startedIn?: EntityManager): WorkflowHandle<R> {
    const runner = startedIn?.queryRunner;
    return {
      id,
      result: async (options: ResultOptions = {}) => {
        // The run cannot execute before the transaction that inserted it commits.
        if (runner && runner.isTransactionActive && !runner.isReleased) {
          throw new StartNotCommittedError(messages.startNotCommitted(id));
        }
        return this.waiter.wait<R>(id, toOptionalMilliseconds(options.timeout), this.worker.executionOf(id));
      },
      status: () => this.status<R>(id),
    };
  }

  /** The run with its recorded steps, or null. */
  async status<R = unknown>(id: string): Promise<RunInfo<R> | null> {
    assertValidId('run id', id);
    const [row, steps] = await Promise.all([this.store.getRun(id), this.steps.loadSteps(id)]);
    return row ? { ...toRunSummary<R>(row), steps: steps.map(toStepInfo) } : null;
  }

  /** Runs newest first, filtered; pass `next` back as `after` for the following page. */
  async list(options: ListRunsOptions = {}): Promise<RunPage> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      throw new InvalidArgumentError(`list(): limit must be an integer from 1 to ${MAX_PAGE}.`);
    }
    const statuses = options.status === undefined ? undefined : [options.status].flat();
    if (statuses?.some((s) => !RUN_STATUSES.includes(s))) {
      throw new InvalidArgumentError(`list(): status must be one of ${RUN_STATUSES.join(', ')}.`);
    }
    const rows = await this.store.listRuns({
      statuses,
      workflow: options.workflow,
      createdAfter: options.createdAfter,
      createdBefore: options.createdBefore,
      cursor: options.after === undefined ? undefined : decodeCursor(options.after),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      runs: page.map((row) => toRunSummary(row)),
      next: rows.length > limit && last ? encodeCursor(last) : undefined,
    };
  }

  /**
   * The latest value a run published under `key` with Durable.setEvent. Waits (through NOTIFY, not by
   * polling) until it is set; resolves undefined if the run ends without setting it or `timeout` passes.
   * @example const progress = await client.getEvent<Progress>(runId, 'progress', { timeout: '10s' });
   */
  async getEvent<T = unknown>(
    id: string,
    key: string,
    options: { timeout?: Duration } = {},
  ): Promise<T | undefined> {
    assertValidId('run id', id);
    assertValidId('event key', key);
    return this.runEvents.get<T>(id, key, toOptionalMilliseconds(options.timeout));
  }

  /**
   * A run's events (Durable.setEvent), in order, as they are published, then one `finished` item when
   * the run has ended; from `after` (an event number, e.g. SSE's Last-Event-ID). Stops when `signal`
   * aborts. Throws RunNotFoundError for an unknown run.
   * @example for await (const item of client.events(runId)) if (item.type === 'event') send(item);
   */
  events(id: string, options: RunStreamOptions = {}): AsyncIterable<RunStreamItem> {
    assertValidId('run id', id);
    const after = options.after ?? 0;
    if (!Number.isSafeInteger(after) || after < 0)
      throw new InvalidArgumentError('events(): `after` must be a non-negative integer (an event number).');
    return this.runEvents.stream(id, options);
  }

  /**
   * Sends a signal to a run that has not finished. It is stored, so a signal sent before the workflow
   * waits for it is not lost; the first matching Durable.waitForSignal consumes it.
   * @example await client.signal(runId, 'approval', { approvedBy: 'ops@acme.test' });
   */
  async signal(id: string, name: string, payload?: unknown): Promise<void> {
    assertValidId('run id', id);
    assertValidId('signal name', name);
    const encoded =
      payload === undefined
        ? 'null'
        : encodeJson(payload, `Payload of signal "${name}"`, this.options.value.maxPayloadBytes);
    const { maxPendingSignals, maxPendingSignalBytes } = this.options.value;
    const sent = await this.control.sendSignal(id, name, encoded, {
      maxPending: maxPendingSignals,
      maxBytes: maxPendingSignalBytes,
    });
    if (!sent.status) throw new RunNotFoundError(messages.runNotFound(id));
    if (isFinished(sent.status)) throw new RunStateError(messages.signalToFinishedRun(id, name, sent.status));
    if (sent.limit === 'signals')
      throw new LimitExceededError(
        messages.signalLimit(id, `${maxPendingSignals} unconsumed signals`, maxPendingSignals),
      );
    if (sent.limit === 'bytes')
      throw new LimitExceededError(
        messages.signalLimit(id, 'that many bytes of unconsumed signals', maxPendingSignalBytes),
      );
  }

  /**
   * Sends a message to a run that has not finished; the run receives it with
   * Durable.waitForSignal(topic) (messages are signals: stored, consumed once each, in the order sent).
   * With an `idempotencyKey`, a message is stored once per run and key: resolves false for a repeat.
   * @example await client.send(orderRunId, 'payment', { paid: true }, { idempotencyKey: event.id });
   */
  send(
    id: string,
    topic: string,
    message?: unknown,
    options: { idempotencyKey?: string } = {},
  ): Promise<boolean> {
    return this.sender.send(id, topic, message, options.idempotencyKey);
  }

  /**
   * Cancels a run and its child runs: they are marked cancelled at once, the step in flight sees its
   * AbortSignal fire, and no later checkpoint of theirs can commit. Returns false if it had already ended.
   */
  async cancel(id: string, reason?: string): Promise<boolean> {
    assertValidId('run id', id);
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > 2_000)) {
      throw new InvalidArgumentError('cancel(): reason must be a string of at most 2000 characters.');
    }
    const error = {
      name: 'RunCancelledError',
      message: reason ?? 'Cancelled',
      code: 'DURABLE_RUN_CANCELLED',
    };
    const cancelled = await this.control.cancelRuns(id, JSON.stringify(error));
    for (const { id: runId, workflow, version } of cancelled) {
      this.bus.emit({ type: 'run.finished', runId, workflow, version, status: 'cancelled', error });
    }
    if (cancelled.length > 0) return true;
    if ((await this.store.findRunWorkflow(id)) === undefined)
      throw new RunNotFoundError(messages.runNotFound(id));
    return false;
  }

  /**
   * Continues a failed or cancelled run: recorded steps replay, the step whose error failed the run
   * (and any step after it) executes again. Use it once the bug or outage is fixed.
   */
  async resume(id: string): Promise<void> {
    assertValidId('run id', id);
    const { status, compensated } = await this.control.resumeRun(id);
    if (!status) throw new RunNotFoundError(messages.runNotFound(id));
    if (status !== 'failed' && status !== 'cancelled')
      throw new RunStateError(messages.resumeNotAllowed(id, status));
    if (compensated) throw new RunStateError(messages.resumeCompensated(compensated));
  }

  /**
   * Starts a new run of the same workflow, version and input whose history is the original's steps
   * recorded before `fromStep`; from that step on it executes again, on the current code. The original
   * is untouched. Steps in flight and compensations are not copied; forking past a step the original
   * compensated is refused (RunStateError).
   * @example const fork = await client.fork(runId, { fromStep: 'configureDns#1' });
   */
  async fork<R = unknown>(id: string, options: ForkOptions = {}): Promise<WorkflowHandle<R>> {
    assertValidId('run id', id);
    if (options.fromStep !== undefined) assertValidId('step key', options.fromStep);
    const newId = options.id ?? randomUUID();
    assertValidId('run id', newId);
    await this.admin.forkRun(id, newId, options.fromStep);
    return this.handleFor<R>(newId);
  }

  /**
   * Deletes finished runs (with their steps and signals) that finished before `before` (a Date, or an
   * age such as '30d'), in batches. `status` defaults to every finished status.
   * @example await client.purge({ before: '30d', status: 'succeeded' })
   */
  async purge(options: PurgeOptions): Promise<PurgeResult> {
    const statuses = options.status === undefined ? FINISHED_STATUSES : [options.status].flat();
    for (const status of statuses) {
      if (!FINISHED_STATUSES.includes(status))
        throw new InvalidArgumentError(messages.invalidPurgeStatus(status));
    }
    const before = options?.before;
    let cutoff: { before: Date } | { ageMs: number };
    if (before instanceof Date && !Number.isNaN(before.getTime())) cutoff = { before };
    else {
      try {
        cutoff = { ageMs: toMilliseconds(before as Duration) };
      } catch {
        throw new InvalidArgumentError(messages.invalidPurgeBefore(before));
      }
    }
    const batchSize = options.batchSize ?? DEFAULT_PURGE_BATCH;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000)
      throw new InvalidArgumentError('purge(): batchSize must be an integer from 1 to 100000.');
    return this.retention.purge([...new Set(statuses)], cutoff, batchSize);
  }

  private workflowName(workflow: WorkflowRef): string {
    if (typeof workflow === 'string') {
      assertValidId('workflow name', workflow);
      return workflow;
    }
    const name = (workflow as unknown as Record<symbol, unknown>)?.[WORKFLOW_NAME_SYMBOL];
    if (typeof name !== 'string') {
      throw new InvalidArgumentError('start() expects a workflow name or a @Workflow method of a provider.');
    }
    return name;
  }
}

/** Options of DurableClient.purge. */
export interface PurgeOptions {
  /** Runs that finished before this Date, or longer ago than this duration ('30d'). */
  before: Date | Duration;
  /** Default: succeeded, failed and cancelled. */
  status?: FinishedStatus | FinishedStatus[];
  /** Runs deleted per statement. Default 1000. */
  batchSize?: number;
}

function toRunSummary<R>(row: RunRow): Omit<RunInfo<R>, 'steps'> {
  return {
    id: row.id,
    workflow: row.workflow,
    version: row.version,
    status: row.status,
    input: decodeJson(row.input) as unknown[],
    output: row.status === 'succeeded' ? (decodeJson(row.output) as R) : undefined,
    error: row.error,
    attempts: row.attempts,
    compensating: row.compensating,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toStepInfo(row: StepRow): StepInfo {
  return {
    key: row.key,
    name: row.name,
    kind: row.kind,
    status: row.status,
    // A waiting sleep or signal shows its recorded wake or timeout time.
    output: row.status === 'succeeded' || row.status === 'waiting' ? decodeJson(row.output) : undefined,
    error: row.error,
    attempts: row.attempts,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

function encodeCursor(row: RunRow & { cursor_ts?: string }): string {
  return Buffer.from(JSON.stringify([row.cursor_ts, row.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof createdAt === 'string' && typeof id === 'string') return { createdAt, id };
  } catch {
    // fall through to the typed error
  }
  throw new InvalidArgumentError('list(): `after` is not a cursor returned by a previous list() call.');
}

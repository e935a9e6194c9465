import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DEFAULT_VERSION } from '../durable.constants';
import { messages } from '../durable.messages';
import { DurableOptionsHolder } from '../durable.options';
import { InvalidArgumentError, ScheduleConflictError, ScheduleNotFoundError } from '../errors';
import { DurableStore } from '../persistence/durable.store';
import { decodeJson, encodeJson } from '../persistence/json-codec';
import { assertValidId } from '../validation';
import { WorkflowRegistry } from '../workflow.registry';
import { defineSchedule } from './schedule-definition';
import type { CreateScheduleOptions, ScheduleInfo } from './schedule.interfaces';
import { ScheduleSweeper } from './schedule.sweeper';
import { ScheduleRow, ScheduleStore } from './schedule.store';

/**
 * Schedules made at run time (`client.schedules`), stored in the database: every replica that serves
 * the workflow fires their ticks, exactly once per tick. @Schedule declarations are listed here too.
 * @example
 * await client.schedules.create('report:acme', { workflow: 'sendReport', cron: '0 8 * * 1', args: ['acme'] });
 * await client.schedules.pause('report:acme');
 */
@Injectable()
export class DurableSchedules {
  constructor(
    private readonly store: ScheduleStore,
    private readonly runs: DurableStore,
    private readonly registry: WorkflowRegistry,
    private readonly sweeper: ScheduleSweeper,
    private readonly options: DurableOptionsHolder,
  ) {}

  /** Creates a schedule; its first tick is the first one after now. Throws ScheduleConflictError if the name exists. */
  async create(name: string, options: CreateScheduleOptions): Promise<ScheduleInfo> {
    if (options === null || typeof options !== 'object')
      throw new InvalidArgumentError(messages.invalidSchedule(name, 'options must be an object'));
    assertValidId('workflow name', options.workflow);
    const args = options.args ?? [];
    if (!Array.isArray(args))
      throw new InvalidArgumentError(messages.invalidSchedule(name, 'args must be an array'));
    const definition = defineSchedule(options.workflow, options.cron, { ...options, name });
    const encoded = encodeJson(args, `Arguments of schedule "${name}"`, this.options.value.maxPayloadBytes);
    const row = await this.store.create(definition, encoded);
    if (!row) throw new ScheduleConflictError(messages.scheduleExists(name));
    void this.sweeper.sweep();
    return toScheduleInfo(row);
  }

  /** Stops firing until resumed. */
  async pause(name: string): Promise<void> {
    await this.setPaused(name, true);
  }

  /** Fires again from the next tick on; ticks during the pause are not caught up. */
  async resume(name: string): Promise<void> {
    await this.setPaused(name, false);
    void this.sweeper.sweep();
  }

  /** Deletes the schedule (its runs go on). A @Schedule declaration comes back at the next startup. */
  async delete(name: string): Promise<void> {
    assertValidId('schedule name', name);
    if (!(await this.store.delete(name))) throw new ScheduleNotFoundError(messages.scheduleNotFound(name));
  }

  /** Starts a run of the schedule now, outside its cron (paused or not); returns the run id. */
  async trigger(name: string): Promise<string> {
    const row = await this.require(name);
    const id = `schedule:${name}:trigger:${randomUUID()}`;
    const registered = this.registry.latest(row.workflow);
    const input = [new Date(), ...(decodeJson(row.args) as unknown[])];
    await this.runs.insertPendingRun({
      id,
      workflow: row.workflow,
      version: registered?.version ?? DEFAULT_VERSION,
      input: encodeJson(input, `Input of schedule "${name}"`, this.options.value.maxPayloadBytes),
      timeoutMs: registered?.timeoutMs,
    });
    return id;
  }

  async get(name: string): Promise<ScheduleInfo | null> {
    assertValidId('schedule name', name);
    const row = await this.store.get(name);
    return row ? toScheduleInfo(row) : null;
  }

  async list(): Promise<ScheduleInfo[]> {
    return (await this.store.list()).map(toScheduleInfo);
  }

  private async setPaused(name: string, paused: boolean): Promise<void> {
    assertValidId('schedule name', name);
    if (!(await this.store.setPaused(name, paused)))
      throw new ScheduleNotFoundError(messages.scheduleNotFound(name));
  }

  private async require(name: string): Promise<ScheduleRow> {
    assertValidId('schedule name', name);
    const row = await this.store.get(name);
    if (!row) throw new ScheduleNotFoundError(messages.scheduleNotFound(name));
    return row;
  }
}

function toScheduleInfo(row: ScheduleRow): ScheduleInfo {
  return {
    name: row.name,
    workflow: row.workflow,
    cron: row.cron,
    timezone: row.timezone,
    overlap: row.overlap,
    catchUp: row.catch_up,
    missedAfterMs: Number(row.missed_after_ms),
    args: decodeJson(row.args) as unknown[],
    source: row.source,
    paused: row.paused,
    nextTickAt: row.next_tick_at,
    lastRunId: row.last_run_id,
    deferredTicks: row.deferred,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { AsyncCheckpoints } from './async-checkpoints';
import { TransactionContext } from './context';
import { DurableClient } from './durable.client';
import { DurableExplorer } from './durable.explorer';
import { DurableMetadataAccessor } from './durable-metadata.accessor';
import { DurableConfigurableModule } from './durable.module-definition';
import { DurableOptionsHolder } from './durable.options';
import { DurableScheduler } from './durable.scheduler';
import { DurableWorker } from './durable.worker';
import { CheckpointWriter } from './engine/checkpoint.writer';
import { Compensator } from './engine/compensator';
import { DurableCallInterceptor } from './engine/durable-call.interceptor';
import { DurableEvents } from './engine/durable.events';
import { ExecutionObserver } from './engine/execution.observer';
import { DurableEventLogger, RunEvents, RunEventsStore } from './events';
import { RunResultWaiter } from './engine/run-result.waiter';
import { StepRunner } from './engine/step.runner';
import { WaitRunner } from './engine/wait.runner';
import { WorkflowExecutor } from './engine/workflow.executor';
import { DurableDatabase } from './persistence/durable.database';
import { DoneNotifier } from './persistence/done-notifier';
import { DurableStore } from './persistence/durable.store';
import { StepStore } from './persistence/step.store';
import { DurableClock } from './engine/durable.clock';
import { RunControlStore } from './persistence/run-control.store';
import { NotificationListener } from './persistence/notification.listener';
import { DurableMetrics, DurableTracing, QueueStats } from './telemetry';
import { MessageSender, MessageStore } from './messaging';
import { QueueClaim, StartStore } from './queues';
import { DurableSchedules } from './schedules/durable-schedules';
import { ScheduleRegistry } from './schedules/schedule.registry';
import { ScheduleStore } from './schedules/schedule.store';
import { ScheduleSweeper } from './schedules/schedule.sweeper';
import { WorkflowRegistry } from './workflow.registry';
import { DurableAdminStore } from './admin/admin.store';
import { RetentionService, RetentionStore } from './retention';

/**
 * Durable workflows on the app's PostgreSQL. Needs TypeOrmModule (a postgres DataSource) and
 * ScheduleModule.forRoot() in the app; global, so DurableClient can be injected anywhere.
 * @example
 * imports: [
 *   TypeOrmModule.forRoot({ type: 'postgres', url, migrations: [...durableMigrations()], migrationsRun: true }),
 *   ScheduleModule.forRoot(),
 *   DurableModule.forRoot({ concurrency: 20 }),
 * ]
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    DurableOptionsHolder,
    DurableMetadataAccessor,
    WorkflowRegistry,
    DurableExplorer,
    DurableDatabase,
    AsyncCheckpoints,
    DurableStore,
    DoneNotifier,
    StepStore,
    RunControlStore,
    DurableClock,
    DurableEvents,
    CheckpointWriter,
    StepRunner,
    WaitRunner,
    Compensator,
    WorkflowExecutor,
    DurableWorker,
    RunResultWaiter,
    NotificationListener,
    DurableScheduler,
    DurableClient,
    DurableCallInterceptor,
    TransactionContext,
    DurableEventLogger,
    RunEvents,
    RunEventsStore,
    DurableTracing,
    { provide: ExecutionObserver, useExisting: DurableTracing },
    DurableMetrics,
    QueueStats,
    ScheduleRegistry,
    ScheduleStore,
    ScheduleSweeper,
    DurableSchedules,
    MessageStore,
    MessageSender,
    StartStore,
    QueueClaim,
    DurableAdminStore,
    RetentionStore,
    RetentionService,
  ],
  // DurableEvents is public; the others are for DurableHealthModule, DurableAdminModule and the CLI
  // (this module is global).
  exports: [
    DurableClient,
    DurableEvents,
    QueueStats,
    NotificationListener,
    DurableOptionsHolder,
    DurableDatabase,
    DurableAdminStore,
  ],
})
export class DurableModule extends DurableConfigurableModule {}

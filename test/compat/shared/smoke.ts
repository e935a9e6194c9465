// The smoke app every compatibility app runs (each app adds its own src/main.ts and package.json).
// One workflow of three steps on order COMPAT_ORDER:
//   reserve  (transactional) inserts the order; its first attempt fails after that write, so the write
//            must roll back with the attempt and only the second attempt's row remains;
//   ship     (plain) records which process ran it; with COMPAT_HANG_IN_SHIP it prints IN_SHIP and hangs,
//            and the test kills the process (SIGKILL) there;
//   complete (transactional) completes the order and, when the app registered a ClsProbe, writes
//            through @nestjs-cls/transactional's TransactionHost as well.
// Lines on stdout: READY <runId> after boot and start, IN_SHIP, RESULT <json output>.
import { DynamicModule, Inject, Injectable, Optional, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import { Durable, DurableClient, DurableModule, durableMigrations, Step, Workflow } from 'nest-durable';
import { DataSource, EntityManager, MigrationInterface, QueryRunner } from 'typeorm';

/** Writes through the app's ambient-transaction library inside a step; provided by apps that use one. */
export interface ClsProbe {
  /** Inserts a `cls` event for the order; says whether the library's transaction is `stepManager`. */
  writeThroughCls(orderId: string, stepManager: EntityManager): Promise<boolean>;
}
export const CLS_PROBE = Symbol('CLS_PROBE');

export interface SmokeOutput {
  orderId: string;
  clsJoined: boolean | null;
}

class CreateCompatTables1700000000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE compat_orders (id text PRIMARY KEY, status text NOT NULL, attempt int NOT NULL)`,
    );
    await queryRunner.query(
      `CREATE TABLE compat_events (order_id text NOT NULL, kind text NOT NULL, pid int NOT NULL)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE compat_events`);
    await queryRunner.query(`DROP TABLE compat_orders`);
  }
}

@Injectable()
export class SmokeWorkflow {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Optional() @Inject(CLS_PROBE) private readonly cls?: ClsProbe,
  ) {}

  @Workflow({ name: 'smoke' })
  async run(orderId: string): Promise<SmokeOutput> {
    await this.reserve(orderId);
    await this.ship(orderId);
    return this.complete(orderId);
  }

  @Step({ transactional: true, retry: { maxAttempts: 3, initialDelay: '50ms' } })
  async reserve(orderId: string): Promise<void> {
    const { attempt } = Durable.context().step!;
    await Durable.manager().query(
      `INSERT INTO compat_orders (id, status, attempt) VALUES ($1, 'reserved', $2)`,
      [orderId, attempt],
    );
    if (attempt === 1) throw new Error('the first attempt fails after its write');
  }

  @Step()
  async ship(orderId: string): Promise<void> {
    await this.dataSource.query(`INSERT INTO compat_events (order_id, kind, pid) VALUES ($1, 'ship', $2)`, [
      orderId,
      process.pid,
    ]);
    if (process.env.COMPAT_HANG_IN_SHIP) {
      console.log('IN_SHIP');
      await new Promise(() => undefined); // until the test kills this process
    }
  }

  @Step({ transactional: true })
  async complete(orderId: string): Promise<SmokeOutput> {
    const manager = Durable.manager();
    await manager.query(`UPDATE compat_orders SET status = 'completed' WHERE id = $1`, [orderId]);
    const clsJoined = this.cls ? await this.cls.writeThroughCls(orderId, manager) : null;
    return { orderId, clsJoined };
  }
}

/** TypeORM (the library's migrations, then the app's), ScheduleModule and DurableModule. */
export function smokeModules(): DynamicModule[] {
  return [
    TypeOrmModule.forRoot({
      type: 'postgres',
      url: process.env.DATABASE_URL,
      migrations: [...durableMigrations(), CreateCompatTables1700000000000],
      migrationsRun: true,
    }),
    ScheduleModule.forRoot(),
    // A stable executor id: the restarted process recovers the killed one's run at once.
    DurableModule.forRoot({ executorId: 'compat-worker', pollIntervalMs: 200 }),
  ];
}

/** Boots the app, starts (or, after a restart, finds) the order's run and prints its result. */
export async function main(appModule: Type): Promise<void> {
  const app = await NestFactory.createApplicationContext(appModule, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  const orderId = process.env.COMPAT_ORDER ?? 'order-1';
  const handle = await app.get(DurableClient).start('smoke', [orderId], { id: `smoke:${orderId}` });
  console.log(`READY ${handle.id}`);
  const output = await handle.result({ timeout: '5m' });
  console.log(`RESULT ${JSON.stringify(output)}`);
  await app.close();
}

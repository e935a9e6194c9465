/**
 * The bench's Nest application: TypeORM (library migrations run at boot), ScheduleModule, DurableModule
 * and the benchmark workflows. Booted the way an app would (NestFactory.createApplicationContext).
 */
import 'reflect-metadata';
import { INestApplicationContext, Injectable, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import {
  Durable,
  DurableModule,
  DurableModuleOptions,
  durableMigrations,
  Step,
  Workflow,
} from 'nest-durable';

/** The telemetry workload sets BENCH_TELEMETRY=off: the same process with tracing and metrics off. */
const TELEMETRY_OFF = process.env.BENCH_TELEMETRY === 'off';

/** recovery-crash sets this: step c2 never returns, so the process is killed with every run mid-flight. */
const BLOCK_IN_STEP_2 = process.env.BENCH_BLOCK === '1';

export const BUSINESS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS public.bench_business (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id text NOT NULL, step text NOT NULL, v integer NOT NULL)`;

@Injectable()
export class BenchFlows {
  /** 3 steps of trivial work (the sequential-latency and K=3 throughput workflow). */
  @Workflow('bench3')
  async three(n: number): Promise<number> {
    const a = await this.stepA(n);
    const b = await this.stepB(a);
    return this.stepC(b);
  }

  /** 10 steps of trivial work (keys step#1..step#10). */
  @Workflow('bench10')
  async ten(n: number): Promise<number> {
    let v = n;
    for (let i = 0; i < 10; i++) v = await this.step(v);
    return v;
  }

  /** 3 transactional steps, each writing one business row through Durable.manager(). */
  @Workflow('benchTx3')
  async tx3(n: number): Promise<number> {
    const a = await this.txA(n);
    const b = await this.txB(a);
    return this.txC(b);
  }

  /** Recovery: the crashed process blocks every run inside c2 (c1 recorded); the restart finishes them. */
  @Workflow('benchCrash')
  async crash(n: number): Promise<number> {
    const a = await this.c1(n);
    const b = await this.c2(a);
    return this.c3(b);
  }

  /** A step, a durable sleep until `wakeAtMs` (epoch ms, shared by all runs), a step. */
  @Workflow('benchSleep')
  async sleeper(n: number, wakeAtMs: number): Promise<number> {
    const a = await this.stepA(n);
    await Durable.sleep(Math.max(1_500, wakeAtMs - Date.now()));
    return this.stepB(a);
  }

  @Step() async stepA(n: number) {
    return n + 1;
  }
  @Step() async stepB(n: number) {
    return n + 1;
  }
  @Step() async stepC(n: number) {
    return n + 1;
  }
  @Step() async step(n: number) {
    return n + 1;
  }

  @Step({ transactional: true }) async txA(n: number) {
    return this.business(n);
  }
  @Step({ transactional: true }) async txB(n: number) {
    return this.business(n);
  }
  @Step({ transactional: true }) async txC(n: number) {
    return this.business(n);
  }

  @Step() async c1(n: number) {
    return n + 1;
  }
  @Step() async c2(n: number) {
    if (BLOCK_IN_STEP_2) await new Promise<never>(() => undefined);
    return n + 1;
  }
  @Step() async c3(n: number) {
    return n + 1;
  }

  private async business(n: number): Promise<number> {
    const { runId, step } = Durable.context();
    await Durable.manager().query('INSERT INTO public.bench_business (run_id, step, v) VALUES ($1, $2, $3)', [
      runId,
      step!.key,
      n,
    ]);
    return n + 1;
  }
}

export interface BenchAppOptions {
  url: string;
  poolSize: number;
  durable: DurableModuleOptions;
}

export async function createBenchApp(options: BenchAppOptions): Promise<INestApplicationContext> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: options.url,
        applicationName: 'bench-durable',
        migrations: durableMigrations(),
        migrationsRun: true,
        extra: { max: options.poolSize },
      }),
      ScheduleModule.forRoot(),
      DurableModule.forRoot(
        TELEMETRY_OFF ? { ...options.durable, tracing: false, metrics: false } : options.durable,
      ),
    ],
    providers: [BenchFlows],
  })
  class BenchModule {}

  Logger.overrideLogger(['error', 'warn']);
  return NestFactory.createApplicationContext(BenchModule, {
    logger: ['error', 'warn'],
    abortOnError: false,
  });
}

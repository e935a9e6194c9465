// Nest 12, TypeORM 1.1, an ES module app on Node 24 with @nestjs-cls/transactional (see package.json
// "compat"): code using TransactionHost inside a transactional step must join the step's transaction.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { ClsPluginTransactional, Transactional, TransactionHost } from '@nestjs-cls/transactional';
import { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';
import { ClsModule } from 'nestjs-cls';
import { EntityManager } from 'typeorm';
import { CLS_PROBE, ClsProbe, main, smokeModules, SmokeWorkflow } from './smoke.js';

@Injectable()
class TransactionHostProbe implements ClsProbe {
  constructor(private readonly txHost: TransactionHost<TransactionalAdapterTypeOrm>) {}

  @Transactional()
  async writeThroughCls(orderId: string, stepManager: EntityManager): Promise<boolean> {
    await this.txHost.tx.query(`INSERT INTO compat_events (order_id, kind, pid) VALUES ($1, 'cls', $2)`, [
      orderId,
      process.pid,
    ]);
    return this.txHost.tx === stepManager;
  }
}

@Module({
  imports: [
    ...smokeModules(),
    ClsModule.forRoot({
      global: true,
      plugins: [
        new ClsPluginTransactional({
          adapter: new TransactionalAdapterTypeOrm({ dataSourceToken: getDataSourceToken() }),
        }),
      ],
    }),
  ],
  providers: [SmokeWorkflow, TransactionHostProbe, { provide: CLS_PROBE, useExisting: TransactionHostProbe }],
})
class AppModule {}

await main(AppModule);

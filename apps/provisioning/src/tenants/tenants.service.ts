import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DurableClient } from '@app/durable';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { ProvisioningWorkflow } from './provisioning.workflow';
import { Tenant, TenantPlan } from './tenant.entity';

@Injectable()
export class TenantsService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly durable: DurableClient,
    private readonly workflow: ProvisioningWorkflow,
  ) {}

  /** The tenant row and its provisioning run commit together, or neither exists. */
  async create(input: { name: string; plan: TenantPlan; region: string; adminEmail: string }) {
    const id = randomUUID();
    const runId = `provision:${id}`;
    await this.dataSource.transaction(async (manager) => {
      await manager.insert(Tenant, { id, ...input, status: 'provisioning', runId, databaseId: null });
      await this.durable.start(this.workflow.provision, [id], { id: runId, manager });
    });
    return { tenantId: id, runId };
  }

  async get(id: string) {
    const tenant = await this.dataSource.getRepository(Tenant).findOneBy({ id });
    if (!tenant) return null;
    const run = await this.durable.status(tenant.runId);
    return { tenant, run };
  }
}

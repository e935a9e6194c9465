import { Injectable } from '@nestjs/common';
import { Durable, Step, Workflow } from '@app/durable';
import { setTimeout as sleep } from 'node:timers/promises';
import { Tenant } from './tenant.entity';

/** Provisions a tenant: each step is checkpointed, so a crash resumes at the first unfinished one. */
@Injectable()
export class ProvisioningWorkflow {
  @Workflow({ name: 'provisionTenant', timeout: '10m' })
  async provision(tenantId: string): Promise<{ tenantId: string; databaseId: string }> {
    const databaseId = await this.createDatabase(tenantId);
    await this.configureDns(tenantId);
    await this.activate(tenantId, databaseId);
    return { tenantId, databaseId };
  }

  /** An external call: at-least-once, so it passes the step's idempotency key to the provider. */
  @Step({ retry: { maxAttempts: 5, initialDelay: '500ms' } })
  async createDatabase(tenantId: string): Promise<string> {
    const { idempotencyKey, signal } = Durable.context().step!;
    await sleep(300, undefined, { signal });
    return `db-${tenantId.slice(0, 8)}-${Buffer.from(idempotencyKey).length}`;
  }

  @Step()
  async configureDns(tenantId: string): Promise<string> {
    await sleep(200);
    return `${tenantId.slice(0, 8)}.tenants.example.test`;
  }

  /** A database effect committed together with its checkpoint: exactly once. */
  @Step({ transactional: true })
  async activate(tenantId: string, databaseId: string): Promise<void> {
    await Durable.manager().update(Tenant, { id: tenantId }, { status: 'active', databaseId });
  }
}

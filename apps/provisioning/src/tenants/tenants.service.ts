import {
  ConflictException,
  Injectable,
  MessageEvent,
  NotFoundException,
  UnprocessableEntityException,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DurableClient, RunInfo, RunStateError } from 'nest-durable';
import { randomUUID } from 'node:crypto';
import { Observable } from 'rxjs';
import { DataSource, EntityManager } from 'typeorm';
import { CreateTenantDto } from './dto/tenant.dto';
import { releaseReservation, settleUnprovisioned } from './quota.sql';
import {
  APPROVAL_SIGNAL,
  ApprovalDecision,
  PROGRESS_EVENT,
  ProvisioningProgress,
  ProvisioningWorkflow,
  runIdOf,
  TenantSnapshot,
} from './provisioning.workflow';
import { Tenant, TenantPlan, TenantStatus } from './tenant.entity';

export interface CreatedTenant {
  tenantId: string;
  runId: string;
  status: TenantStatus;
  /** False when an earlier request with the same Idempotency-Key created it. */
  created: boolean;
}

@Injectable()
export class TenantsService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly durable: DurableClient,
    private readonly workflow: ProvisioningWorkflow,
  ) {}

  /**
   * Inserts the tenant and starts its provisioning run in ONE transaction: both exist or neither does,
   * and workers see the run only once the tenant is committed. With an idempotency key that was seen
   * before, nothing is created: the earlier tenant is returned (422 if the request differs).
   */
  async create(input: CreateTenantDto, idempotencyKey?: string): Promise<CreatedTenant> {
    return this.dataSource.transaction(async (manager) => {
      const id = randomUUID();
      const runId = runIdOf(id);
      const inserted = await manager
        .createQueryBuilder()
        .insert()
        .into(Tenant)
        .values({ id, ...input, status: 'provisioning', runId, idempotencyKey: idempotencyKey ?? null })
        .orIgnore() // ON CONFLICT DO NOTHING: waits for a concurrent request with the same key, then skips
        .returning(['id'])
        .execute();
      if (inserted.raw.length === 0) return this.replay(manager, input, idempotencyKey);
      const snapshot: TenantSnapshot = { tenantId: id, ...input };
      await this.durable.start(this.workflow.provision, [snapshot], { id: runId, manager });
      return { tenantId: id, runId, status: 'provisioning' as const, created: true };
    });
  }

  private async replay(manager: EntityManager, input: CreateTenantDto, key?: string): Promise<CreatedTenant> {
    const existing = key ? await manager.findOneBy(Tenant, { idempotencyKey: key }) : null;
    if (!existing)
      throw new ConflictException('The tenant could not be created (conflict); retry the request.');
    const same =
      existing.name === input.name &&
      existing.plan === input.plan &&
      existing.region === input.region &&
      existing.adminEmail === input.adminEmail;
    if (!same)
      throw new UnprocessableEntityException(
        `Idempotency-Key "${key}" was already used for another request (tenant ${existing.id}); use a new key.`,
      );
    return { tenantId: existing.id, runId: existing.runId, status: existing.status, created: false };
  }

  async list(filter: { status?: TenantStatus; plan?: TenantPlan; limit?: number }): Promise<Tenant[]> {
    return this.dataSource.getRepository(Tenant).find({
      where: {
        ...(filter.status ? { status: filter.status } : {}),
        ...(filter.plan ? { plan: filter.plan } : {}),
      },
      order: { createdAt: 'DESC', id: 'DESC' },
      take: filter.limit ?? 100,
    });
  }

  /**
   * The tenant, its run, the run's steps (attempts, timings, errors) and its latest progress event. The
   * progress events are recorded as steps too (`$event:progress#n`); they are left out of `steps`.
   */
  async get(id: string) {
    const tenant = await this.find(id);
    const run = await this.durable.status(tenant.runId);
    const progress = run
      ? await this.durable.getEvent<ProvisioningProgress>(tenant.runId, PROGRESS_EVENT, { timeout: 0 })
      : undefined;
    return {
      tenant,
      run: run ? summarizeRun(run) : null,
      progress: progress ?? null,
      steps: run ? run.steps.filter((step) => !step.name.startsWith('$event:')).map(summarizeStep) : [],
    };
  }

  /**
   * The tenant's progress as server-sent events: each progress event of its run (id = the event's
   * number, so a reconnecting EventSource resumes after Last-Event-ID), then `finished` with the run's
   * outcome and the tenant's status. Read through NOTIFY, not by polling; ends when `signal` aborts.
   */
  async progressEvents(id: string, after: number, signal: AbortSignal): Promise<Observable<MessageEvent>> {
    const tenant = await this.find(id);
    return new Observable<MessageEvent>((subscriber) => {
      const stop = new AbortController();
      const abort = () => stop.abort();
      signal.addEventListener('abort', abort, { once: true });
      void (async () => {
        let last = after;
        for await (const item of this.durable.events(tenant.runId, { after, signal: stop.signal })) {
          if (item.type === 'event') {
            last = item.seq;
            subscriber.next({
              id: String(item.seq),
              type: item.key,
              data: { ...(item.value as object), at: item.createdAt },
            } as MessageEvent);
          } else {
            const { status } = await this.find(id);
            // The last event's id again: a client reconnecting after it gets `finished` once more.
            subscriber.next({
              id: String(last),
              type: 'finished',
              data: { run: item.status, tenant: status },
            } as MessageEvent);
          }
        }
        subscriber.complete();
      })().catch((error: unknown) => subscriber.error(error));
      return () => {
        signal.removeEventListener('abort', abort);
        stop.abort();
      };
    });
  }

  /** Sends the approval signal (stored even if the workflow is not waiting yet; the first decision wins). */
  async decide(id: string, decision: ApprovalDecision) {
    const tenant = await this.find(id);
    if (tenant.plan !== 'enterprise')
      throw new ConflictException(
        `Tenant ${id} is on the ${tenant.plan} plan: only enterprise tenants need approval.`,
      );
    if (tenant.status !== 'provisioning' && tenant.status !== 'awaiting_approval')
      throw new ConflictException(`Tenant ${id} is ${tenant.status}: there is nothing to approve or reject.`);
    try {
      await this.durable.signal(tenant.runId, APPROVAL_SIGNAL, decision);
    } catch (error) {
      if (error instanceof RunStateError) throw new ConflictException(`Tenant ${id}: ${error.message}`);
      throw error;
    }
    return { tenantId: id, runId: tenant.runId, approved: decision.approved, by: decision.by };
  }

  /**
   * Cancels provisioning: records the request on the tenant (so the undos end it 'cancelled', not
   * 'failed'), then cancels the run. When undos are due (the run's `compensating`), the library runs
   * them (delete DNS, delete database, revoke the key, release the quota) and the last one settles the
   * tenant; otherwise the tenant is settled here.
   */
  async cancel(id: string, reason?: string) {
    const tenant = await this.find(id);
    const why = `Cancelled: ${reason ?? 'by an operator'}`;
    const [marked] = await this.dataSource.query(
      `WITH marked AS (
         UPDATE tenants SET cancel_requested_at = COALESCE(cancel_requested_at, now()),
           failure_reason = COALESCE(failure_reason, $2), updated_at = now()
         WHERE id = $1 AND status IN ('provisioning', 'awaiting_approval') RETURNING 1)
       SELECT count(*)::int AS n FROM marked`,
      [id, why],
    );
    if (marked.n !== 1) {
      const current = await this.find(id);
      throw new ConflictException(`Tenant ${id} is ${current.status}: it can no longer be cancelled.`);
    }
    if (!(await this.durable.cancel(tenant.runId, why))) {
      // The run ended between our mark and the cancel. If it ended because of the mark (activate
      // refuses a tenant being cancelled), the undos settled it 'cancelled': that is our cancel.
      const ended = await this.find(id);
      if (ended.status === 'cancelled')
        return { tenantId: id, runId: tenant.runId, status: ended.status, compensating: false };
      await this.dataSource.query(
        `UPDATE tenants SET cancel_requested_at = NULL, failure_reason = NULLIF(failure_reason, $2) WHERE id = $1`,
        [id, why],
      );
      throw new ConflictException(`Tenant ${id}: its provisioning had already ended (${ended.status}).`);
    }
    const run = await this.durable.status(tenant.runId);
    if (run?.compensating) {
      // The library runs the undos; the last one (releaseQuota) settles the tenant 'cancelled'.
      await this.dataSource.query(
        `UPDATE tenants SET status = 'compensating', updated_at = now()
         WHERE id = $1 AND status IN ('provisioning', 'awaiting_approval')`,
        [id],
      );
    } else {
      // No undo is due: nothing was reserved yet, or the undos have already run. Settle the tenant here
      // (releasing is idempotent).
      await this.dataSource.transaction(async (manager) => {
        await releaseReservation(manager, id);
        await settleUnprovisioned(manager, id);
      });
    }
    const current = await this.find(id);
    return {
      tenantId: id,
      runId: tenant.runId,
      status: current.status,
      compensating: run?.compensating ?? false,
    };
  }

  private async find(id: string): Promise<Tenant> {
    const tenant = await this.dataSource.getRepository(Tenant).findOneBy({ id });
    if (!tenant) throw new NotFoundException(`No tenant ${id}.`);
    return tenant;
  }
}

function summarizeRun(run: RunInfo) {
  return {
    id: run.id,
    workflow: run.workflow,
    version: run.version,
    status: run.status,
    attempts: run.attempts,
    error: run.error ? { name: run.error.name, message: run.error.message } : null,
    output: run.output ?? null,
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
  };
}

function summarizeStep(step: RunInfo['steps'][number]) {
  return {
    key: step.key,
    name: step.name,
    kind: step.kind,
    status: step.status,
    attempts: step.attempts,
    error: step.error ? { name: step.error.name, message: step.error.message } : null,
    output: step.output ?? null,
    startedAt: step.startedAt,
    finishedAt: step.finishedAt,
    durationMs: step.finishedAt
      ? new Date(step.finishedAt).getTime() - new Date(step.startedAt).getTime()
      : null,
  };
}

import { Inject, Injectable, Logger } from '@nestjs/common';
import { Durable, Step, Workflow } from 'nest-durable';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { PROVISIONING_CONFIG, ProvisioningConfig } from '../config/provisioning.config';
import { CloudClient, ProviderDatabase, ProviderDnsRecord } from '../provider/cloud.client';
import { MailClient } from '../provider/mail.client';
import { ProviderRejectedError } from '../provider/provider.errors';
import {
  ApprovalRejectedError,
  ApprovalTimeoutError,
  QuotaExceededError,
  TenantStateError,
} from './provisioning.errors';
import { releaseReservation, settleUnprovisioned } from './quota.sql';
import type { TenantPlan, TenantStatus } from './tenant.entity';

/** The workflow's input: what the tenant row held when it was created (the run's only argument). */
export interface TenantSnapshot {
  tenantId: string;
  name: string;
  plan: TenantPlan;
  region: string;
  adminEmail: string;
}

/** Payload of the 'approval' signal (POST /tenants/:id/approve and /reject). */
export interface ApprovalDecision {
  approved: boolean;
  by: string;
  reason?: string;
}

export interface QuotaReservationInfo {
  plan: TenantPlan;
  region: string;
  capacity: number;
  reservedAt: Date;
}

export interface AdminInfo {
  userId: string;
  apiKeyId: string;
  apiKeyPrefix: string;
}

export interface ProvisionResult {
  tenantId: string;
  databaseId: string;
  dnsName: string;
  adminUserId: string;
}

export const PROVISION_WORKFLOW = 'provisionTenant';
/** The run's progress events (Durable.setEvent): GET /tenants/:id/events streams them. */
export const PROGRESS_EVENT = 'progress';

/** What each progress event says: the stage the provisioning has just reached. */
export interface ProvisioningProgress {
  stage:
    | 'quota reserved'
    | 'database created'
    | 'dns configured'
    | 'awaiting approval'
    | 'approved'
    | 'admin created'
    | 'welcome email sent'
    | 'active';
}
export const APPROVAL_SIGNAL = 'approval';
/** Run ids are derived from the tenant id: starting twice for one tenant returns the same run. */
export const runIdOf = (tenantId: string) => `provision:${tenantId}`;

/** External calls: quick backoff (200 ms, 400 ms, ... up to 3 s), 6 attempts; a 4xx is final. */
const PROVIDER_RETRY = {
  maxAttempts: 6,
  initialDelay: '200ms',
  backoffFactor: 2,
  maxDelay: '3s',
  nonRetryable: [ProviderRejectedError],
};
/** Undo steps must get through: more attempts, same quick backoff. */
const UNDO_RETRY = { ...PROVIDER_RETRY, maxAttempts: 10 };
/** Database steps: a few quick retries for connection hiccups (serialization conflicts retry on their own). */
const DB_RETRY = { maxAttempts: 3, initialDelay: '100ms' };

/**
 * Provisions a tenant as a saga. Every step is checkpointed: after a crash the run resumes at the first
 * unfinished step and finished steps are replayed from their record, not executed again.
 *
 *   reserveQuota (transactional)  -> undo releaseQuota (transactional; ends the tenant failed/cancelled)
 *   createDatabase (external)     -> undo deleteDatabase
 *   configureDns (external)       -> undo deleteDns
 *   enterprise: markAwaitingApproval, wait for the 'approval' signal (timeout = rejection), recordApproval
 *   createAdmin (transactional)   -> undo revokeAdmin
 *   sendWelcomeEmail (external, idempotency key)
 *   activate (transactional)
 *
 * After each stage it publishes a progress event (Durable.setEvent), which GET /tenants/:id/events
 * streams to the tenant page as server-sent events.
 *
 * A failure, a rejection or a cancel makes the library run the undos of the steps that succeeded,
 * newest first. External steps pass the step's idempotency key (`${runId}:${stepKey}`), stable across
 * attempts and restarts, so a step re-executed after a crash gets the resource it already created.
 *
 * The workflow method is re-executed from the top on every resume: code outside steps is deterministic
 * (no clock, no random, no I/O; the log line is the only side effect).
 */
@Injectable()
export class ProvisioningWorkflow {
  private readonly logger = new Logger('Provisioning');

  constructor(
    private readonly cloud: CloudClient,
    private readonly mail: MailClient,
    @Inject(PROVISIONING_CONFIG) private readonly config: ProvisioningConfig,
  ) {}

  @Workflow({ name: PROVISION_WORKFLOW, version: 3 })
  async provision(tenant: TenantSnapshot): Promise<ProvisionResult> {
    // One line per execution of the workflow body (first run, recovery after a crash, wake-up after the
    // approval): the demo counts replays with it.
    this.logger.log(`body run=${Durable.context().runId} tenant="${tenant.name}"`);
    let reserved = false;
    try {
      await this.reserveQuota(tenant.tenantId, tenant.plan, tenant.region);
      reserved = true;
      await progress('quota reserved');
      const database = await this.createDatabase(tenant);
      await progress('database created');
      const dns = await this.configureDns(tenant, database);
      await progress('dns configured');
      if (tenant.plan === 'enterprise') await this.approval(tenant);
      const admin = await this.createAdmin(tenant);
      await progress('admin created');
      await this.sendWelcomeEmail(tenant, dns, admin);
      await progress('welcome email sent');
      await this.activate(tenant, database, dns);
      await progress('active');
      return {
        tenantId: tenant.tenantId,
        databaseId: database.id,
        dnsName: dns.fqdn,
        adminUserId: admin.userId,
      };
    } catch (error) {
      // Say why on the tenant, then rethrow: the run fails and the library runs the undos. When the run
      // was cancelled (or parked, or taken over) no step can run any more: this call rethrows that at
      // once, and the cancel path compensates.
      await this.recordFailure(tenant.tenantId, describe(error), reserved);
      throw error;
    }
  }

  private async approval(tenant: TenantSnapshot): Promise<void> {
    await this.markAwaitingApproval(tenant.tenantId);
    await progress('awaiting approval');
    const decision = await Durable.waitForSignal<ApprovalDecision>(APPROVAL_SIGNAL, {
      timeout: this.config.approvalTimeout,
    });
    if (decision === undefined) throw new ApprovalTimeoutError(this.config.approvalTimeout);
    if (!decision?.approved) throw new ApprovalRejectedError(decision?.by ?? 'unknown', decision?.reason);
    await this.recordApproval(tenant.tenantId, decision.by);
    await progress('approved');
  }

  // ---------------------------------------------------------------------------------------------
  // quota

  /** Reserves one slot of the plan in the region; the reservation row and the counter commit with the checkpoint. */
  @Step({
    transactional: true,
    compensate: 'releaseQuota',
    retry: { ...DB_RETRY, nonRetryable: [QuotaExceededError, TenantStateError] },
  })
  async reserveQuota(tenantId: string, plan: TenantPlan, region: string): Promise<QuotaReservationInfo> {
    this.trace();
    const manager = Durable.manager();
    await manager.query(
      `INSERT INTO plan_quotas (plan, region, capacity) VALUES ($1, $2, $3) ON CONFLICT (plan, region) DO NOTHING`,
      [plan, region, this.config.quotaCapacity[plan]],
    );
    // Counter and reservation row in one statement: they commit together or not at all. The primary key
    // of quota_reservations (the tenant) makes a second reservation for one tenant fail, never count twice.
    const [row] = await manager.query(
      `WITH taken AS (
         UPDATE plan_quotas SET reserved = reserved + 1, updated_at = now()
         WHERE plan = $1 AND region = $2 AND reserved < capacity RETURNING plan, region, capacity),
       reservation AS (
         INSERT INTO quota_reservations (tenant_id, plan, region) SELECT $3, plan, region FROM taken
         RETURNING reserved_at)
       SELECT (SELECT capacity FROM taken) AS taken, (SELECT reserved_at FROM reservation) AS reserved_at,
              (SELECT capacity FROM plan_quotas WHERE plan = $1 AND region = $2) AS capacity`,
      [plan, region, tenantId],
    );
    if (row.taken === null) throw new QuotaExceededError(plan, region, row.capacity);
    return { plan, region, capacity: row.taken, reservedAt: row.reserved_at };
  }

  /**
   * Undo of reserveQuota, and so the last undo to run: releases the slot and settles the tenant,
   * 'cancelled' when an operator asked to cancel it (POST /tenants/:id/cancel records that before it
   * cancels the run), else 'failed'.
   */
  @Step({ transactional: true, retry: { maxAttempts: 10, initialDelay: '200ms', maxDelay: '3s' } })
  async releaseQuota(_reservation: QuotaReservationInfo, tenantId: string): Promise<{ released: boolean }> {
    this.trace();
    const manager = Durable.manager();
    const released = await releaseReservation(manager, tenantId);
    await settleUnprovisioned(manager, tenantId);
    return { released };
  }

  // ---------------------------------------------------------------------------------------------
  // cloud resources

  @Step({ compensate: 'deleteDatabase', timeout: '15s', retry: PROVIDER_RETRY })
  async createDatabase(tenant: TenantSnapshot): Promise<ProviderDatabase> {
    const { idempotencyKey, signal } = this.trace();
    return this.cloud.createDatabase(
      { tenantId: tenant.tenantId, tenantName: tenant.name, plan: tenant.plan, region: tenant.region },
      { idempotencyKey, signal },
    );
  }

  @Step({ timeout: '15s', retry: UNDO_RETRY })
  async deleteDatabase(database: ProviderDatabase): Promise<{ deleted: boolean }> {
    const { signal } = this.trace();
    return { deleted: await this.cloud.deleteDatabase(database.id, { signal }) };
  }

  @Step({ compensate: 'deleteDns', timeout: '15s', retry: PROVIDER_RETRY })
  async configureDns(tenant: TenantSnapshot, database: ProviderDatabase): Promise<ProviderDnsRecord> {
    const { idempotencyKey, signal } = this.trace();
    return this.cloud.createDnsRecord(
      {
        tenantId: tenant.tenantId,
        tenantName: tenant.name,
        name: `${tenant.tenantId.slice(0, 8)}.${tenant.region}.tenants.example.test`,
        target: database.host,
      },
      { idempotencyKey, signal },
    );
  }

  @Step({ timeout: '15s', retry: UNDO_RETRY })
  async deleteDns(record: ProviderDnsRecord): Promise<{ deleted: boolean }> {
    const { signal } = this.trace();
    return { deleted: await this.cloud.deleteDnsRecord(record.id, { signal }) };
  }

  // ---------------------------------------------------------------------------------------------
  // approval

  @Step({ transactional: true, retry: { ...DB_RETRY, nonRetryable: [TenantStateError] } })
  async markAwaitingApproval(tenantId: string): Promise<void> {
    this.trace();
    await this.transition(tenantId, 'awaiting_approval', ['provisioning']);
  }

  @Step({ transactional: true, retry: { ...DB_RETRY, nonRetryable: [TenantStateError] } })
  async recordApproval(tenantId: string, by: string): Promise<void> {
    this.trace();
    await this.transition(tenantId, 'provisioning', ['awaiting_approval'], 'approved_by = $4', [by]);
  }

  // ---------------------------------------------------------------------------------------------
  // admin, email, activation

  /** The admin user and an API key, committed with the checkpoint. The key's secret is never stored. */
  @Step({ transactional: true, compensate: 'revokeAdmin', retry: DB_RETRY })
  async createAdmin(tenant: TenantSnapshot): Promise<AdminInfo> {
    this.trace();
    const manager = Durable.manager();
    const userId = randomUUID();
    const apiKeyId = randomUUID();
    const apiKeyPrefix = `tk_${randomBytes(6).toString('hex')}`;
    // Only the hash is kept; a real service would hand the secret over once (e.g. a claim link in the
    // welcome email). Step outputs are stored as JSON in the durable tables: never return secrets.
    const secretHash = createHash('sha256').update(randomBytes(32)).digest('hex');
    await manager.query(
      `INSERT INTO tenant_users (id, tenant_id, email, role) VALUES ($1, $2, $3, 'admin')`,
      [userId, tenant.tenantId, tenant.adminEmail],
    );
    await manager.query(
      `INSERT INTO api_keys (id, tenant_id, user_id, prefix, secret_hash) VALUES ($1, $2, $3, $4, $5)`,
      [apiKeyId, tenant.tenantId, userId, apiKeyPrefix, secretHash],
    );
    return { userId, apiKeyId, apiKeyPrefix };
  }

  @Step({ transactional: true, retry: { maxAttempts: 10, initialDelay: '200ms', maxDelay: '3s' } })
  async revokeAdmin(admin: AdminInfo): Promise<void> {
    this.trace();
    await Durable.manager().query(
      `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`,
      [admin.apiKeyId],
    );
  }

  /** At-least-once like every external step: the mail service drops a repeated idempotency key. */
  @Step({ timeout: '15s', retry: PROVIDER_RETRY })
  async sendWelcomeEmail(
    tenant: TenantSnapshot,
    dns: ProviderDnsRecord,
    admin: AdminInfo,
  ): Promise<{ messageId: string }> {
    const { idempotencyKey, signal } = this.trace();
    const sent = await this.mail.send(
      {
        tenantId: tenant.tenantId,
        tenantName: tenant.name,
        to: tenant.adminEmail,
        template: 'tenant-welcome',
        data: { url: `https://${dns.fqdn}`, apiKeyPrefix: admin.apiKeyPrefix },
      },
      { idempotencyKey, signal },
    );
    return { messageId: sent.id };
  }

  /**
   * Activates the tenant unless a cancel was requested: the cancel endpoint marks the tenant first, and
   * both updates lock the tenant row, so either the cancel sees 'active' (and is refused) or this step
   * sees the mark and fails (and the undos end the tenant 'cancelled').
   */
  @Step({ transactional: true, retry: { ...DB_RETRY, nonRetryable: [TenantStateError] } })
  async activate(tenant: TenantSnapshot, database: ProviderDatabase, dns: ProviderDnsRecord): Promise<void> {
    this.trace();
    await this.transition(
      tenant.tenantId,
      'active',
      ['provisioning'],
      'database_id = $4, dns_name = $5, activated_at = now(), finished_at = now()',
      [database.id, dns.fqdn],
      'cancel_requested_at IS NULL',
    );
  }

  /** Records why the run fails; 'compensating' while undos are due, else the tenant fails at once. */
  @Step({ transactional: true, retry: DB_RETRY })
  async recordFailure(tenantId: string, reason: string, willCompensate: boolean): Promise<void> {
    this.trace();
    await Durable.manager().query(
      `UPDATE tenants SET status = $2, failure_reason = COALESCE(failure_reason, $3), updated_at = now(),
         finished_at = CASE WHEN $2 = 'failed' THEN now() END
       WHERE id = $1 AND status IN ('provisioning', 'awaiting_approval')`,
      [tenantId, willCompensate ? 'compensating' : 'failed', reason],
    );
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * Moves the tenant to `to` (in the step's transaction) if it is in one of `from` and `condition`
   * holds, else throws TenantStateError. `set` adds assignments whose placeholders start at $4 (`values`).
   */
  private async transition(
    tenantId: string,
    to: TenantStatus,
    from: TenantStatus[],
    set = '',
    values: unknown[] = [],
    condition = 'true',
  ): Promise<void> {
    const [row] = await Durable.manager().query(
      `WITH updated AS (
         UPDATE tenants SET status = $2, updated_at = now()${set ? `, ${set}` : ''}
         WHERE id = $1 AND status = ANY($3::text[]) AND ${condition} RETURNING 1)
       SELECT (SELECT count(*)::int FROM updated) AS n,
              (SELECT status || CASE WHEN cancel_requested_at IS NULL THEN '' ELSE ', cancel requested' END
               FROM tenants WHERE id = $1) AS current`,
      [tenantId, to, from, ...values],
    );
    if (row.n !== 1)
      throw new TenantStateError(
        `Tenant ${tenantId} is '${row.current ?? 'missing'}'; expected ${from.join(' or ')} to become '${to}'.`,
      );
  }

  /** Logs one line per execution of a step body (the demo counts them) and returns the step's context. */
  private trace() {
    const { runId, step } = Durable.context();
    this.logger.log(`exec ${step!.key} attempt=${step!.attempt} run=${runId}`);
    return step!;
  }
}

/** Publishes the stage reached, for clients that follow the tenant live (durable: once per run). */
function progress(stage: ProvisioningProgress['stage']): Promise<void> {
  return Durable.setEvent(PROGRESS_EVENT, { stage } satisfies ProvisioningProgress);
}

function describe(error: unknown): string {
  const err = error as { name?: string; message?: string };
  return `${err?.name ?? 'Error'}: ${err?.message ?? String(error)}`.slice(0, 1_000);
}

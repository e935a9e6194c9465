import type { Duration, DurableModuleOptions } from 'nest-durable';
import type { TenantPlan } from '../tenants/tenant.entity';

/** Injection token of the app's settings (tests may override the provider). */
export const PROVISIONING_CONFIG = Symbol('PROVISIONING_CONFIG');

export interface ProvisioningConfig {
  /** How long an enterprise tenant waits for approval before it is rejected ('7d', '3s' or ms). */
  approvalTimeout: Duration;
  /** Base URL of the cloud provider / mail service; unset: a fake provider is started in-process. */
  providerUrl?: string;
  /** Per-call timeout of provider requests (ms). */
  providerTimeoutMs: number;
  /** Tenants each (plan, region) may hold; a quota row is created with this capacity on first use. */
  quotaCapacity: Record<TenantPlan, number>;
  /** Options of DurableModule (executor id, polling and lease timings, concurrency). */
  durable: DurableModuleOptions;
}

const DURATION = /^(\d+(\.\d+)?)(ms|s|m|h|d)$|^\d+$/;

/**
 * Reads the settings from the environment, failing at boot with the variable's name when one is bad.
 *
 *   APPROVAL_TIMEOUT            default '7d'
 *   PROVIDER_URL                default: an in-process fake provider (FAKE_PROVIDER_* tune it)
 *   PROVIDER_TIMEOUT_MS         default 5000
 *   QUOTA_FREE / QUOTA_PRO / QUOTA_ENTERPRISE   capacity per region, default 1000 / 200 / 20
 *   EXECUTOR_ID                 default 'provisioning-local' (stable: a restart resumes its runs at once)
 *   DURABLE_CONCURRENCY, DURABLE_POLL_INTERVAL_MS, DURABLE_LEASE_MS, DURABLE_HEARTBEAT_MS   library defaults
 */
export function loadProvisioningConfig(env: NodeJS.ProcessEnv = process.env): ProvisioningConfig {
  const approvalTimeout = (env.APPROVAL_TIMEOUT ?? '7d').trim();
  if (!DURATION.test(approvalTimeout))
    throw new Error(
      `APPROVAL_TIMEOUT must be a duration like '30s', '7d' or a number of ms, got '${approvalTimeout}'`,
    );
  const durable: DurableModuleOptions = { executorId: env.EXECUTOR_ID || 'provisioning-local' };
  const optional = (name: string, key: keyof DurableModuleOptions) => {
    if (env[name] !== undefined && env[name] !== '')
      (durable as Record<string, unknown>)[key] = int(env, name, 1);
  };
  optional('DURABLE_CONCURRENCY', 'concurrency');
  optional('DURABLE_POLL_INTERVAL_MS', 'pollIntervalMs');
  optional('DURABLE_LEASE_MS', 'leaseMs');
  optional('DURABLE_HEARTBEAT_MS', 'heartbeatMs');
  return {
    approvalTimeout: /^\d+$/.test(approvalTimeout) ? Number(approvalTimeout) : approvalTimeout,
    providerUrl: env.PROVIDER_URL || undefined,
    providerTimeoutMs: int(env, 'PROVIDER_TIMEOUT_MS', 1, 5_000),
    quotaCapacity: {
      free: int(env, 'QUOTA_FREE', 0, 1_000),
      pro: int(env, 'QUOTA_PRO', 0, 200),
      enterprise: int(env, 'QUOTA_ENTERPRISE', 0, 20),
    },
    durable,
  };
}

function int(env: NodeJS.ProcessEnv, name: string, min: number, fallback?: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (fallback === undefined) throw new Error(`${name} is required`);
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new Error(`${name} must be an integer >= ${min}, got '${raw}'`);
  return value;
}

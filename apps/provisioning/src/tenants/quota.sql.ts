import type { EntityManager } from 'typeorm';

/**
 * Releases a tenant's quota reservation and gives its slot back, in the caller's transaction.
 * Idempotent: a reservation is released once (released_at), so the counter is decremented once.
 * Returns whether this call released it.
 */
export async function releaseReservation(manager: EntityManager, tenantId: string): Promise<boolean> {
  const [row] = await manager.query(
    `WITH released AS (
       UPDATE quota_reservations SET released_at = now() WHERE tenant_id = $1 AND released_at IS NULL
       RETURNING plan, region),
     counted AS (
       UPDATE plan_quotas q SET reserved = q.reserved - 1, updated_at = now()
       FROM released r WHERE q.plan = r.plan AND q.region = r.region RETURNING 1)
     SELECT count(*)::int AS n FROM counted`,
    [tenantId],
  );
  return row.n === 1;
}

/**
 * Ends a tenant that did not become active: 'cancelled' if a cancel was requested, else 'failed'
 * (an active or already settled tenant is left as it is).
 */
export async function settleUnprovisioned(manager: EntityManager, tenantId: string): Promise<void> {
  await manager.query(
    `UPDATE tenants SET finished_at = now(), updated_at = now(),
       status = CASE WHEN cancel_requested_at IS NULL THEN 'failed' ELSE 'cancelled' END,
       failure_reason = COALESCE(failure_reason, CASE WHEN cancel_requested_at IS NULL
         THEN 'Provisioning failed' ELSE 'Cancelled by an operator' END)
     WHERE id = $1 AND status NOT IN ('active', 'failed', 'cancelled')`,
    [tenantId],
  );
}

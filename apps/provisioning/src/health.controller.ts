import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { DurableHealthIndicator } from 'nest-durable';

/**
 * GET /health: 200 when the durable engine of this replica is healthy (database reachable, heartbeat
 * recent, LISTEN connected, no due run waiting over 5 minutes), else 503 with the problems.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly durable: DurableHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.durable.isHealthy('durable', { maxBacklogAge: '5m' })]);
  }
}

import { Module } from '@nestjs/common';
import { DurableHealthIndicator } from './durable.health-indicator';

/**
 * Provides DurableHealthIndicator for the app's @nestjs/terminus health checks. Import it beside
 * TerminusModule (and DurableModule); without `@nestjs/terminus` installed the app fails at boot with
 * an error that says so.
 * @example imports: [TerminusModule, DurableModule.forRoot(), DurableHealthModule]
 */
@Module({ providers: [DurableHealthIndicator], exports: [DurableHealthIndicator] })
export class DurableHealthModule {}

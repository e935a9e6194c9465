export { DurableHealthModule } from './durable-health.module';
export {
  DurableHealthDetails,
  DurableHealthIndicator,
  DurableHealthOptions,
} from './durable.health-indicator';

export * from './lifecycle-events';
export { DurableEventLogger } from './durable-event.logger';

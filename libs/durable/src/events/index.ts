export * from './lifecycle-events';
export { DurableEventLogger } from './durable-event.logger';
export { RunEvents, RunStreamItem, RunStreamOptions } from './run-events';
export { RunEventsStore } from './run-events.store';

export * from './durable-context.interface';
export * from './durable-module-options.interface';
export * from './run-info.interface';
export * from './start-options.interface';
export * from './step-options.interface';
export * from './workflow-options.interface';

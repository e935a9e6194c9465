export * from './step.decorator';
export * from './workflow-metadata';
export * from './workflow.decorator';

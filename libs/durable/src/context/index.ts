export * from './durable-scope';
export * from './transaction.context';

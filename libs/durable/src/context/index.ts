export * from './durable-scope';

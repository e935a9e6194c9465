export * from './connection-string';
export * from './failover-stream';
export * from './postgres-failover';

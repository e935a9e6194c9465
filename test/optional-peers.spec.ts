/**
 * Optional peers missing from the app: without @nestjs/terminus, an app that imports DurableHealthModule
 * fails at boot with an error that names the package; without @opentelemetry/api, the library emits no
 * telemetry and runs as usual. (Jest's module registry stands in for node_modules without them.)
 */
import { Injectable } from '@nestjs/common';
import { createTestDatabase, TestDatabase } from './support/database';

function notInstalled(name: string): () => never {
  return () => {
    const error = new Error(`Cannot find module '${name}' from 'libs/durable/src/optional-peer.ts'`);
    (error as { code?: string }).code = 'MODULE_NOT_FOUND';
    throw error;
  };
}

describe('optional peer dependencies', () => {
  let db: TestDatabase;

  beforeAll(async () => (db = await createTestDatabase()));
  afterAll(() => db?.drop());
  afterEach(() => jest.resetModules());

  it('DurableHealthModule without @nestjs/terminus fails at boot and says what to install', async () => {
    jest.doMock('@nestjs/terminus', notInstalled('@nestjs/terminus'));
    const { DurableHealthModule, InvalidOptionsError } = await import('nest-durable');
    const { createDurableApp } = await import('./support/durable-app');
    const boot = createDurableApp({ url: db.url, providers: [], imports: [DurableHealthModule] });
    await expect(boot).rejects.toThrow(InvalidOptionsError);
    await expect(boot).rejects.toThrow(
      'DurableHealthIndicator needs the optional peer dependency "@nestjs/terminus", which is not installed: npm install @nestjs/terminus',
    );
  });

  it('without @opentelemetry/api runs execute and store no trace context', async () => {
    jest.doMock('@opentelemetry/api', notInstalled('@opentelemetry/api'));
    const { DurableClient, Step, Workflow } = await import('nest-durable');
    const { createDurableApp } = await import('./support/durable-app');
    const { DataSource } = await import('typeorm');

    @Injectable()
    class PlainFlows {
      @Workflow('plain')
      async plain(n: number) {
        return this.inc(n);
      }
      @Step()
      async inc(n: number) {
        return n + 1;
      }
    }

    const app = await createDurableApp({ url: db.url, providers: [PlainFlows] });
    try {
      const handle = await app.get(DurableClient).start('plain', [1]);
      expect(await handle.result({ timeout: '30s' })).toBe(2);
      const rows = await app
        .get(DataSource)
        .query('SELECT trace_context FROM durable.runs WHERE id = $1', [handle.id]);
      expect(rows).toEqual([{ trace_context: null }]);
    } finally {
      await app.close();
    }
  });
});

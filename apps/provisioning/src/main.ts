import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { AppModule, DASHBOARD_PATH } from './app.module';
import { configureApp } from './app.setup';

async function bootstrap(): Promise<void> {
  if (!process.env.DATABASE_URL) throw new Error('DATABASE_URL is not set (npm start sets it for you).');
  const app = configureApp(await NestFactory.create(AppModule));
  await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  // The demo and the crash test wait for this line (PORT=0 picks a free port).
  Logger.log(`Provisioning API listening on http://127.0.0.1:${port} (pid ${process.pid})`, 'Bootstrap');
  Logger.log(`Dashboard: http://127.0.0.1:${port}/${DASHBOARD_PATH}`, 'Bootstrap');
  // Started by npm start with an IPC channel: if that parent dies, shut down as on SIGTERM.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

bootstrap().catch((error: unknown) => {
  Logger.error(`The app did not start: ${(error as Error)?.stack ?? String(error)}`, undefined, 'Bootstrap');
  process.exit(1);
});

// Nest 11, TypeORM 0.3, a CommonJS app on Node 20 (see package.json "compat").
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { main, smokeModules, SmokeWorkflow } from './smoke.js';

@Module({ imports: smokeModules(), providers: [SmokeWorkflow] })
class AppModule {}

void main(AppModule).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

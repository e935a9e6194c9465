import { Module } from '@nestjs/common';
import { ProviderModule } from '../provider/provider.module';
import { FakeProviderController } from './fake-provider.controller';

@Module({ imports: [ProviderModule], controllers: [FakeProviderController] })
export class FakeProviderModule {}

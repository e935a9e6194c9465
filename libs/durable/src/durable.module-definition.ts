import { ConfigurableModuleBuilder } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DURABLE_DATA_SOURCE } from './durable.constants';
import type { DurableModuleExtras, DurableModuleOptions } from './interfaces';

export const {
  ConfigurableModuleClass: DurableConfigurableModule,
  MODULE_OPTIONS_TOKEN: DURABLE_MODULE_OPTIONS,
  OPTIONS_TYPE: DURABLE_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: DURABLE_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<DurableModuleOptions>()
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createDurableOptions')
  // The data source picks an injection token, so it is fixed when the module is defined.
  .setExtras<DurableModuleExtras>({ dataSourceName: undefined }, (definition, extras) => ({
    ...definition,
    global: true,
    providers: [
      ...(definition.providers ?? []),
      { provide: DURABLE_DATA_SOURCE, useExisting: getDataSourceToken(extras.dataSourceName) },
    ],
  }))
  .build();

import { Inject, Injectable } from '@nestjs/common';
import { PROVISIONING_CONFIG, ProvisioningConfig } from '../config/provisioning.config';
import { ProviderEndpoint } from './provider-endpoint';
import { CallOptions, providerCall } from './provider-http';

export interface ProviderDatabase {
  id: string;
  host: string;
  region: string;
}

export interface ProviderDnsRecord {
  id: string;
  fqdn: string;
  target: string;
}

/** The cloud provider's API: tenant databases and DNS records. Creates take an idempotency key. */
@Injectable()
export class CloudClient {
  constructor(
    private readonly endpoint: ProviderEndpoint,
    @Inject(PROVISIONING_CONFIG) private readonly config: ProvisioningConfig,
  ) {}

  async createDatabase(
    request: { tenantId: string; tenantName: string; plan: string; region: string },
    options: CallOptions,
  ): Promise<ProviderDatabase> {
    const created = await this.call<ProviderDatabase>('POST', '/databases', request, options);
    return { id: created!.id, host: created!.host, region: created!.region };
  }

  /** Deletes a database; false when the provider does not know it (already deleted). */
  async deleteDatabase(id: string, options: CallOptions = {}): Promise<boolean> {
    const path = `/databases/${encodeURIComponent(id)}`;
    return (await this.call('DELETE', path, undefined, { ...options, notFoundIsNull: true })) !== null;
  }

  async createDnsRecord(
    request: { tenantId: string; tenantName: string; name: string; target: string },
    options: CallOptions,
  ): Promise<ProviderDnsRecord> {
    const created = await this.call<ProviderDnsRecord>('POST', '/dns-records', request, options);
    return { id: created!.id, fqdn: created!.fqdn, target: created!.target };
  }

  async deleteDnsRecord(id: string, options: CallOptions = {}): Promise<boolean> {
    const path = `/dns-records/${encodeURIComponent(id)}`;
    return (await this.call('DELETE', path, undefined, { ...options, notFoundIsNull: true })) !== null;
  }

  private call<T>(
    method: 'POST' | 'DELETE',
    path: string,
    body: unknown,
    options: CallOptions & { notFoundIsNull?: boolean },
  ): Promise<T | null> {
    return providerCall<T>(this.endpoint.url, method, path, body, {
      ...options,
      timeoutMs: this.config.providerTimeoutMs,
    });
  }
}

import { Client } from 'pg';

/** Runs one statement on a fresh connection (survives server restarts and terminated backends). */
export async function query<T = Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Like query(), but retried for `ms` while the server does not answer (e.g. just after a restart). */
export async function queryPatiently<T = Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
  ms = 60_000,
): Promise<T[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await query<T>(url, sql, params);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

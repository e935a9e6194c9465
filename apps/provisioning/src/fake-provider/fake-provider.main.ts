/**
 * The fake cloud provider as a process of its own, so that it outlives the app when the app is killed
 * (the demo and the crash test run it this way; the app then gets PROVIDER_URL).
 *
 *   node -r @swc-node/register apps/provisioning/src/fake-provider/fake-provider.main.ts
 *
 * Environment: FAKE_PROVIDER_PORT (default 0: a free port), FAKE_PROVIDER_LATENCY_MS ('20-80'),
 * FAKE_PROVIDER_FAILURE_RATE ('0'). Prints `FAKE_PROVIDER_LISTENING <url>` once it accepts calls.
 */
import { FakeProvider, fakeProviderOptionsFromEnv } from './fake-provider';

async function main(): Promise<void> {
  const provider = new FakeProvider(fakeProviderOptionsFromEnv());
  const url = await provider.listen(Number(process.env.FAKE_PROVIDER_PORT ?? 0));
  process.stdout.write(`FAKE_PROVIDER_LISTENING ${url}\n`);
  const stop = () => {
    void provider.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`fake provider failed to start: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});

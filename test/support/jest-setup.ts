// Runs in every test file (setupFilesAfterEnv): no child process outlives the file that spawned it.
import { killAllSpawned } from './spawn';

afterAll(async () => {
  await killAllSpawned();
});

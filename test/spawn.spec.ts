import { killAndWait, spawnTs, waitForLine } from './support/spawn';

describe('spawnTs (TypeScript child processes)', () => {
  it('runs a .ts entry with decorator metadata, args and env, and collects its lines', async () => {
    const child = spawnTs('test/fixtures/spawn-probe.ts', {
      args: ['a', 'b'],
      env: { SPAWN_PROBE_VALUE: 'xyz' },
    });
    await waitForLine(child, /^ready$/, 60_000);
    expect(await waitForLine(child, /^paramtypes=/)).toBe('paramtypes=Dependency,Number');
    expect(child.stdoutLines).toContain('args=a,b');
    expect(child.stdoutLines).toContain('env=xyz');
    await waitForLine(child, /^stderr works$/);
    expect(child.stderrLines).toContain('stderr works');

    // stdin is a pipe; `since` skips the lines already seen
    const mark = child.lines.length;
    child.stdin!.write('hello\n');
    expect(await waitForLine(child, /^echo:/, 5_000, mark)).toBe('echo:hello');
    child.stdin!.write('again\n');
    expect(await waitForLine(child, /^echo:/, 5_000, mark + 1)).toBe('echo:again');

    const { signal } = await killAndWait(child, 'SIGKILL');
    expect(signal).toBe('SIGKILL');
  });

  it('rejects waitForLine when the process exits without a match', async () => {
    const child = spawnTs('test/fixtures/spawn-probe.ts', { args: ['--exit', '3'] });
    await expect(waitForLine(child, /^never$/, 20_000)).rejects.toThrow(/exited \(code 3/);
    expect((await child.exited).code).toBe(3);
  });
});

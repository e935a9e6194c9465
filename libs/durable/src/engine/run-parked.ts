/** Internal: unwinds a workflow whose run was parked (sleep, wait, long retry backoff). Never surfaces. */
export class RunParked extends Error {
  constructor(readonly runId: string) {
    super(`Run "${runId}" is parked; this execution stops here and the run resumes when it is due.`);
    this.name = 'RunParked';
  }
}

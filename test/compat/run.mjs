// Compatibility job: the packed library, installed into small apps as a user would install it.
//
//   node test/compat/run.mjs [app ...]        every app folder here by default (.ci/run: under `timeout`)
//
// 1. `npm pack` libs/durable (its prepack builds dist/) and check what the tarball holds.
// 2. For each app (a folder here with package.json and src/main.ts; "compat" in its package.json names its
//    Node major version and whether it uses @nestjs-cls/transactional): copy it with shared/ into a scratch
//    folder, `npm install` its ranges plus the tarball (no lockfile: the newest versions in range, printed),
//    compile it with the repository's TypeScript against what was installed, and run the smoke scenario
//    (smoke.mjs) on its Node (scripts/node-from-npm.mjs: from the npm registry unless it is this one).
// PostgreSQL from scripts/postgres.mjs (DATABASE_URL, else embedded); one new database per app, dropped
// afterwards. COMPAT_KEEP=1 keeps the scratch folders (printed).

import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { nodeBinary } from '../../scripts/node-from-npm.mjs';
import { createDatabase, databaseUrl, dropDatabase, startPostgres } from '../../scripts/postgres.mjs';
import { liveApps, runSmoke } from './smoke.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** What a user of the package needs, and nothing else. */
const PACKED_FILE = /^(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist\/.+\.(js|d\.ts))$/;
const NOT_PACKED = /\.spec\.|\.map$/;

const say = (line) => console.log(line);
const started = Date.now();
const timings = [];
const timed = async (label, fn) => {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    timings.push([label, Date.now() - t0]);
  }
};

const apps = process.argv.slice(2).length
  ? process.argv.slice(2)
  : fs.readdirSync(here).filter((name) => fs.existsSync(path.join(here, name, 'src/main.ts')));
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'nest-durable-compat-'));
let postgres;
const results = { passed: 0, failed: 0 };
const children = new Set();
// `timeout` (in .ci/run) signals this process only: end what it started before leaving.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, async () => {
    say(`\n${signal}: stopping the compatibility job`);
    for (const child of [...children, ...liveApps]) child.kill('SIGKILL');
    await postgres?.stop().catch(() => undefined);
    fs.rmSync(scratch, { recursive: true, force: true });
    process.exit(1);
  });
}
try {
  const tarball = await timed('npm pack', () => pack(scratch));
  postgres = await timed('PostgreSQL', () => startPostgres({ log: (m) => say(`[postgres] ${m}`) }));
  for (const name of apps) {
    say(`\n---- ${name} ----`);
    try {
      await testApp(name, tarball);
      results.passed++;
      say(`PASS ${name}`);
    } catch (error) {
      results.failed++;
      say(`FAIL ${name}: ${error instanceof Error ? error.stack : error}`);
    }
  }
} finally {
  await postgres?.stop();
  if (process.env.COMPAT_KEEP) say(`scratch folders kept in ${scratch}`);
  else fs.rmSync(scratch, { recursive: true, force: true });
  say('\ntimings:');
  for (const [label, ms] of timings) say(`  ${label.padEnd(44)} ${(ms / 1000).toFixed(1).padStart(6)} s`);
  say(`  ${'total'.padEnd(44)} ${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s`);
}
say(`compat: ${results.passed} passed, ${results.failed} failed`);
if (results.failed > 0 || results.passed === 0) process.exit(1);

/** Packs libs/durable into `dir`; checks the file list; returns the tarball's path. */
async function pack(dir) {
  const out = await run(npm, ['pack', '--json', '--pack-destination', dir], {
    cwd: path.join(root, 'libs/durable'),
  });
  const [info] = JSON.parse(out.slice(out.indexOf('[')));
  const files = info.files.map((f) => f.path);
  const unexpected = files.filter((f) => !PACKED_FILE.test(f) || NOT_PACKED.test(f));
  const required = [
    'package.json',
    'README.md',
    'LICENSE',
    'CHANGELOG.md',
    'dist/index.js',
    'dist/index.d.ts',
  ];
  const absent = required.filter((f) => !files.includes(f));
  if (unexpected.length || absent.length) {
    throw new Error(`the package holds unexpected files [${unexpected}] or lacks [${absent}]`);
  }
  say(
    `packed ${info.id}: ${files.length} files, ${(info.size / 1024).toFixed(0)} kB (unpacked ${(info.unpackedSize / 1024).toFixed(0)} kB)`,
  );
  return path.join(dir, info.filename);
}

async function testApp(name, tarball) {
  const appDir = path.join(scratch, name);
  fs.cpSync(path.join(here, name), appDir, { recursive: true });
  fs.cpSync(path.join(here, 'shared/smoke.ts'), path.join(appDir, 'src/smoke.ts'));
  fs.cpSync(path.join(here, 'shared/tsconfig.json'), path.join(appDir, 'tsconfig.json'));
  const manifestPath = path.join(appDir, 'package.json');
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  manifest.dependencies['nest-durable'] = `file:${tarball}`;
  fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  const { node: major, cls } = manifest.compat;

  const node = await timed(`${name}: Node ${major}`, () => nodeBinary(major));
  await timed(`${name}: npm install`, () =>
    run(npm, ['install', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'], {
      cwd: appDir,
    }),
  );
  printVersions(appDir, manifest, node);
  await timed(`${name}: tsc`, () => run(process.execPath, [tsc, '-p', appDir], { cwd: appDir }));

  const database = `compat_${name.replace(/\W/g, '_')}_${crypto.randomBytes(4).toString('hex')}`;
  await createDatabase(postgres.url, database);
  try {
    await timed(`${name}: smoke (boot, kill -9, recovery)`, () =>
      runSmoke({ dir: appDir, node, url: databaseUrl(postgres.url, database), cls, log: say }),
    );
  } finally {
    await dropDatabase(postgres.url, database);
  }
}

/** The exact versions this app resolved, for the job's output. */
function printVersions(appDir, manifest, node) {
  const version = (pkg) =>
    JSON.parse(fs.readFileSync(path.join(appDir, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  const nodeVersion = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  const names = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies }).sort();
  say(`resolved: node ${nodeVersion}, module type ${manifest.type}`);
  for (const pkg of names) say(`  ${pkg}@${version(pkg)}`);
}

/** Runs a command to its end (stderr shown); resolves with its stdout, rejects on a non-zero exit. */
function run(command, args, { cwd }) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (out += chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      children.delete(child);
      if (code === 0) resolve(out);
      else
        reject(
          new Error(`${path.basename(command)} ${args.join(' ')} exited with ${code ?? signal}:\n${out}`),
        );
    });
  });
}

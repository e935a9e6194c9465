// Builds the publishable package nest-durable (libs/durable) into libs/durable/dist: CommonJS JavaScript
// and .d.ts, no specs, no source maps. `npm run build` at the root; `npm pack` in libs/durable runs it too
// (prepack).
//
// Adding to the package:
//   - a folder under libs/durable/src (admin/, cli/, telemetry/, ...) is compiled with everything else:
//     libs/durable/tsconfig.build.json takes src/**/*.ts except *.spec.ts;
//   - a sub-path export is one line in libs/durable/package.json `exports`, e.g.
//     "./admin": "./dist/admin/index.js" (TypeScript finds dist/admin/index.d.ts beside it);
//   - a command is one line in `bin`, e.g. "nest-durable": "./dist/cli/main.js" (start that file with
//     `#!/usr/bin/env node`);
//   - an optional integration's package goes in peerDependencies and peerDependenciesMeta (optional).
// This script fails when an `exports`, `main`, `types` or `bin` target is missing from the build.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const packageDir = path.join(root, 'libs/durable');
const dist = path.join(packageDir, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

fs.rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', path.join(packageDir, 'tsconfig.build.json')], {
  stdio: 'inherit',
});

// The package's README and LICENSE are the repository's (one copy to keep up to date); npm packs them
// from the package folder, where .gitignore keeps these copies out of git.
for (const file of ['README.md', 'LICENSE'])
  fs.copyFileSync(path.join(root, file), path.join(packageDir, file));

const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
const targets = [
  manifest.main,
  manifest.types,
  ...exportTargets(manifest.exports),
  ...binTargets(manifest.bin),
];
const missing = targets.filter((target) => !fs.existsSync(path.join(packageDir, target)));
if (missing.length > 0) {
  throw new Error(
    `libs/durable/package.json points at files the build did not produce: ${missing.join(', ')}`,
  );
}
const built = fs.readdirSync(dist, { recursive: true }).map(String);
console.log(
  `built ${manifest.name}@${manifest.version}: ${built.filter((f) => f.endsWith('.js')).length} modules in dist/`,
);

/** Every file an `exports` map points at (strings at any depth of conditions). */
function exportTargets(exports) {
  if (typeof exports === 'string') return [exports];
  if (!exports || typeof exports !== 'object') return [];
  return Object.values(exports).flatMap(exportTargets);
}

function binTargets(bin) {
  if (typeof bin === 'string') return [bin];
  return Object.values(bin ?? {});
}

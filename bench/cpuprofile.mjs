// Summarizes a V8 .cpuprofile (node --cpu-prof): self time per function, top N, and self time grouped
// by package/area (library, typeorm, pg, nest, node internals, GC, idle).
import fs from 'node:fs';
import path from 'node:path';

/** @returns {{ totalMs: number, idleMs: number, top: object[], byArea: object[] }} */
export function summarizeProfile(
  file,
  { top = 15, root = process.cwd(), libraryMarker = 'libs/durable/' } = {},
) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the next delta to sample i (V8's convention).
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, dt));
  }
  // Inclusive time of library functions: a sample counts once for every distinct library function on
  // its stack (async continuations start new stacks, so this is the synchronous part only).
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const inclusive = new Map();
  for (const [id, us] of selfUs) {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at).callFrame;
      if (!frame.url.includes(libraryMarker)) continue;
      const key = `${frame.functionName || '(anonymous)'} ${shorten(frame.url, root)}:${frame.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us / 1000);
    }
  }
  const perFunction = new Map();
  const perArea = new Map();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    const frame = node.callFrame;
    const name = frame.functionName || '(anonymous)';
    totalUs += us;
    if (name === '(idle)') {
      idleUs += us;
      continue;
    }
    const where = frame.url ? `${shorten(frame.url, root)}:${frame.lineNumber + 1}` : '';
    const key = `${name} ${where}`;
    const entry = perFunction.get(key) ?? { function: name, location: where, selfMs: 0 };
    entry.selfMs += us / 1000;
    perFunction.set(key, entry);
    const area = areaOf(name, frame.url);
    perArea.set(area, (perArea.get(area) ?? 0) + us / 1000);
  }
  const busyMs = (totalUs - idleUs) / 1000;
  const pct = (ms) => Math.round((ms / Math.max(busyMs, 1e-9)) * 1000) / 10;
  return {
    file: path.basename(file),
    totalMs: Math.round(totalUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    busyMs: Math.round(busyMs),
    top: [...perFunction.values()]
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top)
      .map((e) => ({ ...e, selfMs: Math.round(e.selfMs), pctOfBusy: pct(e.selfMs) })),
    libraryInclusive: [...inclusive]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, ms]) => ({ function: fn, inclusiveMs: Math.round(ms), pctOfBusy: pct(ms) })),
    byArea: [...perArea]
      .sort((a, b) => b[1] - a[1])
      .map(([area, ms]) => ({ area, selfMs: Math.round(ms), pctOfBusy: pct(ms) })),
  };
}

function shorten(url, root) {
  let p = url.replace(/^file:\/\//, '');
  if (p.startsWith(root)) p = p.slice(root.length + 1);
  return p.replace(/^.*node_modules\//, 'node_modules/');
}

function areaOf(name, url) {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return 'V8 (program)';
  if (!url) return 'native/builtin';
  if (url.includes('libs/durable/')) return 'library (libs/durable)';
  if (url.includes('/bench/')) return 'bench harness';
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (pkg) {
    if (pkg[1].startsWith('pg') || pkg[1] === 'postgres-array' || pkg[1].startsWith('postgres-'))
      return 'pg (driver)';
    if (pkg[1].startsWith('@nestjs-cls') || pkg[1] === 'nestjs-cls') return 'nestjs-cls';
    if (pkg[1].startsWith('@nestjs')) return 'nest';
    return pkg[1];
  }
  if (url.startsWith('node:')) return 'node internals';
  return 'other';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const file of process.argv.slice(2)) console.log(JSON.stringify(summarizeProfile(file), null, 2));
}

import fs from 'node:fs';

/** Debian's Chromium (scripts/ensure-chromium.sh installs it), or CHROMIUM_PATH. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const chromiumAvailable = fs.existsSync(CHROMIUM_PATH);

/**
 * Headless flags for a root, network-less machine: no sandbox (root), no GPU, and none of Chromium's
 * own background connections (refused here, and slow to fail).
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

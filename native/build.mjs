#!/usr/bin/env node
// Builds the optional native matmul addon (native/build/Release/clinilora_native.node) with node-gyp.
// Run by `npm install` / `npm ci` ("install" script). It never fails the install: on any problem it
// prints one line and exits 0, and clinilora then runs on the wasm backend alone.
// Needs: a C++ compiler, make, python3 (for gyp), OpenBLAS (Debian: libopenblas-dev) and the Node
// headers installed beside the node binary (<prefix>/include/node). Nothing is downloaded.
// CLINILORA_NATIVE=0 skips the build; CLINILORA_NATIVE_BUILD_VERBOSE=1 shows node-gyp's output.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const logFile = path.join(here, 'build', 'build.log');

function done(msg) {
  process.stdout.write(`clinilora native: ${msg}\n`);
  process.exit(0);
}

/** node-gyp's entry script: the one npm runs scripts with, else npm's bundled copy, else a local install. */
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const prefix = path.dirname(path.dirname(process.execPath));
  candidates.push(path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(path.join(path.dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed locally
  }
  return candidates.find((c) => existsSync(c));
}

/** A directory holding include/node/node_api.h, so node-gyp does not try to download headers. */
function findNodeDir() {
  const fromNpm = process.env.npm_config_nodedir;
  const candidates = [fromNpm, path.dirname(path.dirname(process.execPath)), '/usr', '/usr/local'].filter(Boolean);
  return candidates.find((d) => existsSync(path.join(d, 'include', 'node', 'node_api.h')));
}

if (process.env.CLINILORA_NATIVE === '0') done('skipped (CLINILORA_NATIVE=0)');
if (process.platform !== 'linux' && process.platform !== 'darwin') done(`skipped on ${process.platform}; using wasm`);
const gyp = findNodeGyp();
if (gyp === undefined) done('node-gyp not found; using wasm');
const nodedir = findNodeDir();
if (nodedir === undefined) done('Node headers (include/node/node_api.h) not found; using wasm');

const verbose = process.env.CLINILORA_NATIVE_BUILD_VERBOSE === '1';
const res = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '--loglevel=warn'], {
  cwd: here,
  encoding: 'utf8',
  stdio: verbose ? 'inherit' : 'pipe',
  timeout: 300_000,
});
try {
  mkdirSync(path.dirname(logFile), { recursive: true });
  writeFileSync(logFile, `${res.stdout ?? ''}${res.stderr ?? ''}`);
} catch {
  // the log is a convenience only
}
if (res.error !== undefined || res.status !== 0) {
  const out = `${res.stderr ?? ''}\n${res.stdout ?? ''}`;
  const why = /cannot find -lopenblas|openblas/i.test(out)
    ? 'OpenBLAS not found (apt-get install libopenblas-dev)'
    : res.error !== undefined
      ? res.error.message
      : `node-gyp exited with ${res.status}`;
  done(`not built (${why}; log: native/build/build.log); using wasm`);
}
// Loading it here catches a missing shared library now rather than at first use.
const addonPath = path.join(here, 'build', 'Release', 'clinilora_native.node');
const check = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addonPath)}).info()`], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
if (check.status !== 0) done(`built but does not load (${(check.stderr || '').trim().split('\n')[0]}); using wasm`);
done('built native/build/Release/clinilora_native.node (OpenBLAS matmul)');

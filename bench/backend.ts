/**
 * fp32 matmul GFLOP/s per backend and wasm thread count, as a share of this machine's peak, with the
 * peak RSS of each run. A backend and its thread count are fixed per process, so each configuration
 * runs in its own child process (one at a time, so they do not compete for cores).
 *
 * Peak = cores × GHz (/proc/cpuinfo "cpu MHz") × FLOP/cycle (2 FMA units × SIMD lanes × 2); each row
 * carries its formula. The 128-bit SIMD ceiling (16 FLOP/cycle) is the one wasm SIMD code can reach.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MAX_WASM_THREADS } from '../src/backend/wasm-threads.ts';
import { peakEstimate, readCpuInfo } from '../src/backend/sysinfo.ts';

type Row = Record<string, number | string>;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const srcUrl = (p: string): string => pathToFileURL(path.join(root, 'src', p)).href;

/** What a child prints: the backend it got, its measurements and its peak RSS. */
interface ChildResult {
  backend?: { name: string; threads: number; simd: boolean };
  error?: string;
  results: Array<{ n: number; reps: number; gflops: number; medianGflops: number }>;
  maxRssKiB: number;
}

const CHILD = `
const { initBackend } = await import(${JSON.stringify(srcUrl('backend/index.ts'))});
const { measureMatmul } = await import(${JSON.stringify(srcUrl('backend/matmul-probe.ts'))});
const sizes = JSON.parse(process.env.BENCH_SIZES);
let out;
try {
  const be = await initBackend();
  const results = sizes.map((n) => measureMatmul(n));
  out = { backend: { name: be.name, threads: be.threads, simd: be.simd }, results };
} catch (e) {
  out = { error: String(e?.message ?? e), results: [] };
}
out.maxRssKiB = process.resourceUsage().maxRSS;
process.stdout.write(JSON.stringify(out) + '\\n');
`;

function runChild(backend: string, threads: number, sizes: number[]): Promise<ChildResult> {
  const env = { ...process.env, CLINILORA_BACKEND: backend, CLINILORA_THREADS: String(threads), BENCH_SIZES: JSON.stringify(sizes) };
  const args = ['--import', 'tsx', '--input-type=module', '-e', CHILD];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: root, env, timeout: 300_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as ChildResult);
      } catch {
        reject(new Error(`bench child (${backend}, ${threads} threads) failed: ${err?.message ?? ''}\n${stderr}`));
      }
    });
  });
}

export async function run(): Promise<Row[]> {
  const cpu = readCpuInfo();
  const peak = peakEstimate(cpu);
  const maxThreads = Math.min(cpu.cores, MAX_WASM_THREADS);
  const configs: Array<[string, number, number[]]> = [
    ['tensorflow', 1, [512, 1024]],
    ...Array.from({ length: maxThreads }, (_, i): [string, number, number[]] => ['wasm', i + 1, [512, 1024]]),
    // The plain-JS backend is ~100× slower: one size, small enough to take about a second.
    ['cpu', 1, [512]],
  ];
  const rows: Row[] = [];
  for (const [backend, threads, sizes] of configs) {
    process.stderr.write(`[bench] backend: ${backend}${backend === 'wasm' ? ` ${threads} thread(s)` : ''}\n`);
    const load = os.loadavg()[0]!; // the CPU may be shared: record how busy it was
    const r = await runChild(backend, threads, sizes);
    if (r.backend === undefined) {
      rows.push({ backend, status: 'unavailable', reason: r.error ?? 'unknown' });
      continue;
    }
    for (const m of r.results) {
      rows.push({
        backend: r.backend.name,
        threads: r.backend.threads,
        simd: r.backend.simd ? 'yes' : 'no',
        n: m.n,
        reps: m.reps,
        gflops: round(m.gflops),
        median_gflops: round(m.medianGflops),
        peak_gflops: round(peak.gflops),
        share_of_peak: round(m.gflops / peak.gflops, 3),
        simd128_ceiling_gflops: round(peak.simd128Gflops),
        share_of_simd128: round(m.gflops / peak.simd128Gflops, 3),
        avx2_fma_peak_gflops: round(peak.avx2FmaGflops),
        peak_formula: peak.formula,
        max_rss_mib: round(r.maxRssKiB / 1024),
        cpu: cpu.model,
        load_avg_1m: round(load, 2),
      });
    }
  }
  return rows;
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

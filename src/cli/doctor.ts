/** `clinilora doctor`: what runs here, how fast, and what optional parts were found. */
import { readFileSync } from 'node:fs';
import { initBackend, type BackendInfo, type BackendName } from '../backend/index.ts';
import { measureMatmul, type MatmulMeasure } from '../backend/matmul-probe.ts';
import { nativeStatus, setNativeEnabled, type NativeStatus } from '../backend/native.ts';
import { peakEstimate, readCpuInfo, readMemory, type CpuInfo, type MemoryInfo, type PeakEstimate } from '../backend/sysinfo.ts';
import { defineCommand } from './command.ts';
import { CliniloraError } from '../errors.ts';
import { keyPackageVersions, probeOptionalParts, type OptionalPart } from './doctor-probes.ts';

export interface DoctorReport {
  clinilora: { version: string };
  backend: BackendInfo;
  cpu: CpuInfo & { peak: PeakEstimate };
  memory: MemoryInfo;
  node: { version: string; v8: string; platform: string; arch: string };
  packages: Record<string, string | null>;
  optional: Record<string, OptionalPart>;
  matmul: MatmulMeasure & {
    backend: BackendName;
    threads: number;
    shareOfPeak: number;
    shareOfSimd128: number;
    /** Who ran it: the native OpenBLAS addon or the backend's own kernel. */
    path: 'native' | 'backend';
    /** With the native path on: the backend's own kernel on the same product, for comparison. */
    backendGflops?: number;
  };
  /** The native matmul addon: loaded or why not (native/, built at install). */
  native: NativeStatus;
  notes: string[];
}

export interface DoctorOptions {
  backend?: BackendName;
  threads?: number;
  /** Matmul size n for [n, n] × [n, n] (default 512; 256 on the cpu backend, which is ~100× slower). */
  matmulSize?: number;
}

function ownVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function collectDoctorReport(opts: DoctorOptions = {}): Promise<DoctorReport> {
  const backend = await initBackend({
    ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
  });
  const cpu = readCpuInfo();
  const peak = peakEstimate(cpu);
  // Probe first, measure after: `import torch` would otherwise steal a core from the matmul.
  const optional = await probeOptionalParts();
  const n = opts.matmulSize ?? (backend.name === 'cpu' ? 256 : 512);
  const mm = measureMatmul(n);
  const native = nativeStatus();
  let backendGflops: number | undefined;
  if (native.active && native.backends.includes(backend.name)) {
    setNativeEnabled(false);
    try {
      backendGflops = measureMatmul(n).gflops;
    } finally {
      setNativeEnabled(true);
    }
  }
  const notes = [...backend.notes];
  if (backend.name !== 'tensorflow') {
    notes.push(
      'TensorFlow.js suggests its native backend (@tensorflow/tfjs-node); its install downloads libtensorflow 2.9.1 ' +
        '(and the -gpu one needs CUDA 11.2 + cuDNN 8.1), so it is optional here; clinilora silences tfjs\'s "Hi, looks like ' +
        'you are running TensorFlow.js in Node.js" banner.',
    );
  }
  if (cpu.avx512f) notes.push('The AVX-512 peak assumes two 512-bit FMA units a core; some Xeons have one (then halve it).');
  return {
    clinilora: { version: ownVersion() },
    backend,
    cpu: { ...cpu, peak },
    memory: readMemory(),
    node: { version: process.version, v8: process.versions.v8, platform: process.platform, arch: process.arch },
    packages: keyPackageVersions(),
    optional,
    matmul: {
      ...mm,
      backend: backend.name,
      threads: backend.threads,
      shareOfPeak: peak.gflops > 0 ? mm.gflops / peak.gflops : 0,
      shareOfSimd128: peak.simd128Gflops > 0 ? mm.gflops / peak.simd128Gflops : 0,
      path: backendGflops !== undefined ? 'native' : 'backend',
      ...(backendGflops !== undefined ? { backendGflops } : {}),
    },
    native,
    notes,
  };
}

const GiB = 1024 ** 3;
const pct = (x: number): string => `${(100 * x).toFixed(0)}%`;
const yes = (b: boolean): string => (b ? 'yes' : 'no');

export function formatDoctorReport(r: DoctorReport): string {
  const b = r.backend;
  const how = b.source === 'auto' ? 'chosen automatically' : b.source === 'env' ? 'asked for by CLINILORA_BACKEND' : 'asked for';
  const m = r.matmul;
  const lines = [
    `clinilora ${r.clinilora.version} doctor`,
    '',
    `Backend     ${b.name} (${b.threads} thread${b.threads === 1 ? '' : 's'}${b.name === 'wasm' ? `, SIMD ${yes(b.simd)}` : ''}), ${how}`,
    ...b.tried.map((t) => `  ${t.name.padEnd(11)} ${t.status}: ${t.reason}`),
    `Matmul      ${m.n}×${m.n}×${m.n} fp32: ${m.gflops.toFixed(1)} GFLOP/s best, ${m.medianGflops.toFixed(1)} median ` +
      `(${m.reps} runs) = ${pct(m.shareOfPeak)} of peak, ${pct(m.shareOfSimd128)} of the 128-bit SIMD ceiling` +
      (m.backendGflops !== undefined ? `; native path (${b.name} kernel alone: ${m.backendGflops.toFixed(1)})` : ''),
    r.native.active
      ? `Native      on: ${r.native.blas ?? 'OpenBLAS'}, ${r.native.threads} thread(s), matmuls ≥ ${r.native.minMacs} multiply-adds (CLINILORA_NATIVE=0 turns it off)`
      : `Native      off: ${r.native.reason ?? 'not active'}`,
    `CPU         ${r.cpu.model}; ${r.cpu.cores} cores at ${r.cpu.mhz.toFixed(0)} MHz; ` +
      (r.cpu.flagsKnown ? `AVX2 ${yes(r.cpu.avx2)}, FMA ${yes(r.cpu.fma)}, AVX-512 ${yes(r.cpu.avx512f)}` : 'SIMD flags unknown (no /proc/cpuinfo)'),
    `Peak fp32   ${r.cpu.peak.gflops.toFixed(1)} GFLOP/s = ${r.cpu.peak.formula}`,
    `            AVX2+FMA code ${r.cpu.peak.avx2FmaGflops.toFixed(1)}; 128-bit SIMD (wasm) ceiling ${r.cpu.peak.simd128Gflops.toFixed(1)} GFLOP/s`,
    `Memory      ${(r.memory.totalBytes / GiB).toFixed(1)} GiB total, ${(r.memory.freeBytes / GiB).toFixed(1)} GiB free`,
    `Node        ${r.node.version} (V8 ${r.node.v8}, ${r.node.platform}-${r.node.arch})`,
    'Packages',
    ...Object.entries(r.packages).map(([k, v]) => `  ${k.padEnd(30)} ${v ?? 'absent'}`),
    'Optional parts',
    ...Object.entries(r.optional).map(([k, v]) => `  ${k.padEnd(30)} ${v.found ? 'found' : 'no'}: ${v.detail}`),
  ];
  if (r.notes.length > 0) lines.push('Notes', ...r.notes.map((n) => `  - ${n}`));
  return lines.join('\n') + '\n';
}

export const doctorCommand = defineCommand({
  name: 'doctor',
  description: 'Show the chosen backend and why, the machine, package versions and optional parts; measure matmul speed.',
  flags: {
    json: { type: 'boolean', description: 'Print the report as JSON' },
    backend: { type: 'string', placeholder: 'tensorflow|wasm|cpu', description: 'Use this backend (default: CLINILORA_BACKEND, else the best available)' },
    threads: { type: 'string', placeholder: 'n', description: 'wasm threads (default: CLINILORA_THREADS, else all cores)' },
    size: { type: 'string', placeholder: 'n', description: 'Matmul size n for [n,n]×[n,n] (default 512; 256 on cpu)' },
  },
  async run({ flags, stdout }) {
    const report = await collectDoctorReport({
      ...(flags.backend !== undefined ? { backend: flags.backend as BackendName } : {}),
      ...(flags.threads !== undefined ? { threads: Number(flags.threads) } : {}),
      ...(flags.size !== undefined ? { matmulSize: positiveInt(flags.size, 'size') } : {}),
    });
    stdout.write(flags.json === true ? JSON.stringify(report, null, 2) + '\n' : formatDoctorReport(report));
  },
});

function positiveInt(s: string, field: string): number {
  const n = Number(s);
  if (Number.isInteger(n) && n > 0 && n <= 8192) return n;
  throw new CliniloraError('E_ARG', 'expected a positive integer', { field: `--${field}`, expected: '1..8192', found: s });
}

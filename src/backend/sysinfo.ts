/**
 * What this machine is, for `clinilora doctor` and the benchmarks: CPU model, SIMD flags, cores,
 * clock, memory, and the fp32 peak that follows from them.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface CpuInfo {
  model: string;
  /** Cores Node may use (os.availableParallelism()). */
  cores: number;
  /** Clock from /proc/cpuinfo "cpu MHz" (nominal in a VM), else os.cpus()[0].speed; 0 if unknown. */
  mhz: number;
  avx2: boolean;
  fma: boolean;
  avx512f: boolean;
  /** false when /proc/cpuinfo is absent (flags then unknown, reported false). */
  flagsKnown: boolean;
}

export interface PeakEstimate {
  /** fp32 peak of the widest vector ISA found, in GFLOP/s. */
  gflops: number;
  /** FLOP a core retires per cycle at that peak. */
  flopPerCycle: number;
  /** The formula with its numbers, e.g. "2 cores × 2.700 GHz × 32 FLOP/cycle (AVX2+FMA: ...)". */
  formula: string;
  /** Peak of AVX2+FMA code (cores × GHz × 32), whatever wider ISA exists: what OpenBLAS-style code reaches. */
  avx2FmaGflops: number;
  /** Ceiling for 128-bit SIMD code such as wasm SIMD (cores × GHz × 2 FMA units × 4 lanes × 2 = 16). */
  simd128Gflops: number;
}

export function readCpuInfo(cpuinfoPath = '/proc/cpuinfo'): CpuInfo {
  let text = '';
  try {
    text = readFileSync(cpuinfoPath, 'utf8');
  } catch {
    // not Linux: fall back to os.cpus()
  }
  const first = text.split(/\n\s*\n/)[0] ?? '';
  const field = (name: string): string | undefined => {
    const m = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(first);
    return m?.[1]?.trim();
  };
  const flags = new Set((field('flags') ?? '').split(/\s+/).filter((f) => f !== ''));
  const cpus = os.cpus();
  const mhz = Number(field('cpu MHz') ?? cpus[0]?.speed ?? 0);
  return {
    model: field('model name') ?? cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    mhz: Number.isFinite(mhz) ? mhz : 0,
    avx2: flags.has('avx2'),
    fma: flags.has('fma'),
    avx512f: flags.has('avx512f'),
    flagsKnown: flags.size > 0,
  };
}

/**
 * fp32 peak = cores × GHz × FLOP/cycle, assuming two FMA units a core (every AVX2 Intel core since
 * Haswell and AMD since Zen 2): FLOP/cycle = 2 units × lanes × 2 (an FMA is a multiply and an add).
 * AVX2 lanes = 8 → 32; AVX-512 = 16 lanes → 64 (an upper bound: some Xeons have one 512-bit unit).
 */
export function peakEstimate(cpu: CpuInfo): PeakEstimate {
  const ghz = cpu.mhz / 1000;
  const simd128Gflops = cpu.cores * ghz * 16;
  let flopPerCycle = 16;
  let isa = 'SSE/128-bit (no AVX2+FMA flags): 2 units × 4 lanes × 2';
  if (cpu.avx512f && cpu.fma) {
    flopPerCycle = 64;
    isa = 'AVX-512: 2 FMA units × 16 lanes × 2, an upper bound';
  } else if (cpu.avx2 && cpu.fma) {
    flopPerCycle = 32;
    isa = 'AVX2+FMA: 2 FMA units × 8 lanes × 2';
  }
  const gflops = cpu.cores * ghz * flopPerCycle;
  const formula = `${cpu.cores} cores × ${ghz.toFixed(3)} GHz × ${flopPerCycle} FLOP/cycle (${isa})`;
  return { gflops, flopPerCycle, formula, avx2FmaGflops: cpu.cores * ghz * 32, simd128Gflops };
}

export interface MemoryInfo {
  totalBytes: number;
  freeBytes: number;
}

export function readMemory(): MemoryInfo {
  return { totalBytes: os.totalmem(), freeBytes: os.freemem() };
}

/**
 * `clinilora merge --adapter DIR --out DIR`: the adapter merged into its base (W + B·A·scaling, in
 * float32: the base loads unquantized), written as a Hugging Face checkpoint directory that loads
 * anywhere Phi-3 does. An existing, non-empty --out is refused (nothing is overwritten) unless --force.
 */
import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliniloraError } from '../errors.ts';
import { savePhi3 } from '../model/checkpoint.ts';
import { mergeAndUnloadLora } from '../model/lora/model.ts';
import { openModel } from '../pipeline/session.ts';
import { defineCommand } from './command.ts';

/** Refuses to write over something that exists (files) or holds files (directories). */
export function refuseOverwrite(path: string, flag: string, force: boolean): void {
  if (force || !existsSync(path)) return;
  let empty = false;
  try {
    empty = readdirSync(path).length === 0;
  } catch {
    empty = false; // a file
  }
  if (!empty) throw new CliniloraError('E_ARG', 'the output exists; nothing was written', { file: path, field: flag, hint: 'choose another path or pass --force to replace it' });
}

export const mergeCommand = defineCommand({
  name: 'merge',
  description: 'Merge a LoRA adapter into its base and write a Hugging Face checkpoint directory',
  flags: {
    adapter: { type: 'string', placeholder: 'dir|run-id', description: 'The adapter (PEFT directory or training run id)' },
    out: { type: 'string', short: 'o', placeholder: 'dir', description: 'Output directory' },
    base: { type: 'string', placeholder: 'dir|preset:…', description: "Base model (default: the adapter's base)" },
    dtype: { type: 'string', placeholder: 'F32|F16|BF16', description: 'Weight dtype on disk (default F32)' },
    force: { type: 'boolean', description: 'Replace an existing output' },
  },
  async run({ flags, stdout }) {
    if (flags.adapter === undefined) throw new CliniloraError('E_ARG', 'missing --adapter', { field: '--adapter', hint: "see 'clinilora merge --help'" });
    if (flags.out === undefined) throw new CliniloraError('E_ARG', 'missing --out', { field: '--out', hint: "see 'clinilora merge --help'" });
    const dtype = flags.dtype ?? 'F32';
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw new CliniloraError('E_ARG', 'unknown dtype', { field: '--dtype', expected: 'F32 | F16 | BF16', found: dtype });
    const out = resolve(flags.out);
    refuseOverwrite(out, '--out', flags.force === true);
    const s = await openModel({ adapter: flags.adapter, ...(flags.base !== undefined ? { base: flags.base } : {}), float: true });
    try {
      const merged = mergeAndUnloadLora(s.model);
      const w = savePhi3(out, s.model, { dtype });
      stdout.write(`merged ${merged.length} adapted linears of ${s.adapter!.dir} into ${s.base.spec}\nwrote ${out}: ${w.files.length} files, ${(w.totalBytes / 2 ** 20).toFixed(1)} MiB (${dtype})\n`);
    } finally {
      s.model.dispose();
    }
    return 0;
  },
});

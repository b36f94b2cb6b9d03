/**
 * `clinilora export gguf (--adapter DIR | --model DIR) --out FILE [--type F32|F16|Q8_0|Q4_0]`: a model
 * for llama.cpp. With --adapter the adapter is merged on the fly into its (float) base; with --model a
 * checkpoint directory (e.g. one written by `clinilora merge`) is exported as is.
 */
import { resolve } from 'node:path';
import { CliniloraError } from '../errors.ts';
import { exportGguf } from '../model/export.ts';
import { openModel } from '../pipeline/session.ts';
import { defineCommand } from './command.ts';
import { refuseOverwrite } from './merge.ts';

const TYPES = ['F32', 'F16', 'Q8_0', 'Q4_0'] as const;
type GgufType = (typeof TYPES)[number];

export const exportCommand = defineCommand({
  name: 'export',
  description: 'Export a model as GGUF for llama.cpp (an adapter merged into its base, or a checkpoint directory)',
  positionals: [{ name: 'format', description: 'gguf', required: true }],
  flags: {
    adapter: { type: 'string', placeholder: 'dir|run-id', description: 'Adapter to merge into its base' },
    model: { type: 'string', placeholder: 'dir|preset:…', description: 'A checkpoint directory (or base spec) to export as is' },
    base: { type: 'string', placeholder: 'dir|preset:…', description: "With --adapter: the base (default: the adapter's base)" },
    out: { type: 'string', short: 'o', placeholder: 'file.gguf', description: 'Output file' },
    type: { type: 'string', placeholder: TYPES.join('|'), description: 'Tensor type of the 2-D weights (default F16)' },
    force: { type: 'boolean', description: 'Replace an existing output file' },
  },
  async run({ flags, positionals, stdout }) {
    if (positionals[0] !== 'gguf') throw new CliniloraError('E_ARG', 'unknown export format', { field: '<format>', expected: 'gguf', found: JSON.stringify(positionals[0]) });
    if ((flags.adapter === undefined) === (flags.model === undefined)) {
      throw new CliniloraError('E_ARG', 'give exactly one of --adapter and --model', { field: flags.adapter === undefined ? '--adapter' : '--model', hint: "see 'clinilora export --help'" });
    }
    if (flags.out === undefined) throw new CliniloraError('E_ARG', 'missing --out', { field: '--out', hint: "see 'clinilora export --help'" });
    const type = (flags.type ?? 'F16') as GgufType;
    if (!TYPES.includes(type)) throw new CliniloraError('E_ARG', 'unknown GGUF tensor type', { field: '--type', expected: TYPES.join(' | '), found: JSON.stringify(flags.type) });
    const out = resolve(flags.out);
    refuseOverwrite(out, '--out', flags.force === true);
    const s = await openModel({
      ...(flags.adapter !== undefined ? { adapter: flags.adapter } : {}),
      ...(flags.model !== undefined ? { base: flags.model } : flags.base !== undefined ? { base: flags.base } : {}),
      float: true,
    });
    try {
      const r = await exportGguf(s.model, out, { fileType: type, name: s.adapter !== null ? `${s.config.task}-lora` : 'phi3' });
      stdout.write(`wrote ${r.path}: ${r.tensors} tensors, ${(r.parameters / 1e6).toFixed(2)} M parameters, ${type}${s.adapter !== null ? ` (adapter ${s.adapter.dir} merged into ${s.base.spec})` : ''}\n`);
    } finally {
      s.model.dispose();
    }
    return 0;
  },
});

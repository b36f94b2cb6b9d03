/**
 * `clinilora chat [--adapter DIR]`: an interactive medical assistant. Each line read from stdin is a
 * question, answered through safe generation (the safety system prefix, the post-filter with its
 * fallback, the disclaimer); `quit` or `exit` (or the end of the input) leaves. Works with piped
 * stdin: the prompt marker is shown only on a terminal. Questions are answered one at a time,
 * without the earlier turns (the nano models are trained on single questions).
 */
import { createInterface } from 'node:readline';
import { generationOptions, safetyConfig } from '../pipeline/evaluate.ts';
import { openModel } from '../pipeline/session.ts';
import { safeGenerate } from '../safety/generate.ts';
import { defineCommand } from './command.ts';

export const chatCommand = defineCommand({
  name: 'chat',
  description: "Chat with the medical assistant (safety layer on); type 'quit' to leave",
  flags: {
    adapter: { type: 'string', placeholder: 'dir|run-id', description: 'LoRA adapter (PEFT directory or training run id)' },
    base: { type: 'string', placeholder: 'dir|preset:…', description: "Base model (default: the adapter's base, else models/phi3-nano)" },
    set: { type: 'string', multiple: true, placeholder: 'key=value', description: 'Override a config key, e.g. eval.maxNewTokens=128' },
  },
  async run({ flags, stdout, stderr }) {
    const s = await openModel({ ...(flags.adapter !== undefined ? { adapter: flags.adapter } : {}), ...(flags.base !== undefined ? { base: flags.base } : {}), task: 'alpacare', set: flags.set ?? [] });
    const tty = process.stdin.isTTY === true;
    const rl = createInterface({ input: process.stdin, terminal: false });
    const gen = generationOptions(s.config);
    const safety = safetyConfig(s.config);
    stderr.write(`clinilora chat: base ${s.base.spec}${s.adapter !== null ? `, adapter ${s.adapter.dir}` : ''}. Not medical advice. Type 'quit' to leave.\n`);
    try {
      if (tty) stdout.write('> ');
      for await (const raw of rl) {
        const line = raw.trim();
        if (line === 'quit' || line === 'exit') break;
        if (line !== '') {
          const t0 = performance.now();
          const [o] = safeGenerate(s.model, s.tokenizer, [line], { generation: gen, safety });
          stdout.write(`assistant: ${o!.text}\n`);
          if (o!.tripped) stderr.write(`[safety filter: ${o!.violations.map((v) => v.ruleId).join(', ')}${o!.fallbackUsed ? ' → safe fallback shown' : ''}]\n`);
          stderr.write(`[${o!.tokens.length} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s]\n`);
        }
        if (tty) stdout.write('> ');
      }
    } finally {
      rl.close();
      s.model.dispose();
    }
    stdout.write('bye\n');
    return 0;
  },
});

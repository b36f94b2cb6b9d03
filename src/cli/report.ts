/**
 * `clinilora report <id>... [--out file.html] [--png DIR]`: one self-contained HTML page for the
 * runs (src/report). PNGs need headless Chromium: when it (or playwright-core) is missing, the HTML
 * is still written and the command ends with a message saying what to install (exit 2).
 */
import { exportPngs } from '../report/png.ts';
import { writeReport } from '../report/html.ts';
import { defineCommand } from './command.ts';

export const reportCommand = defineCommand({
  name: 'report',
  description: 'Write one self-contained HTML report (plotly inline: loss, lr, metrics, confusion, reliability, config diff) for runs',
  positionals: [{ name: 'id', description: 'Run ids (or unique prefixes, or paths to run.json)', required: true, rest: true }],
  flags: {
    out: { type: 'string', short: 'o', placeholder: 'file.html', description: 'Output file (default <home>/experiments/reports/report-<id>.html)' },
    png: { type: 'string', placeholder: 'dir', description: 'Also export each figure as PNG into this directory (needs chromium + playwright-core)' },
    home: { type: 'string', placeholder: 'dir', description: 'Where experiments/runs lives (default CLINILORA_HOME or the package root)' },
  },
  async run({ flags, positionals, stdout }) {
    const r = writeReport(positionals, { ...(flags.home !== undefined ? { root: flags.home } : {}), ...(flags.out !== undefined ? { out: flags.out } : {}) });
    stdout.write(`report ${r.file} (${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${r.data.runs.length} run(s), ${r.figures.length} figure(s))\n`);
    for (const n of r.data.notes) stdout.write(`note: ${n}\n`);
    if (flags.png !== undefined) {
      const files = await exportPngs(r.file, r.figures, flags.png);
      for (const f of files) stdout.write(`png ${f}\n`);
    }
    return 0;
  },
});

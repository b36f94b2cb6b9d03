/**
 * `clinilora report <id>... [--out file.html] [--png DIR]`: one self-contained HTML page for the
 * runs (src/report), and with --png each figure as `<DIR>/<figure id>.png` through headless Chromium.
 * With --png and no Chromium the (complete) HTML is written, no PNG is, and the command exits 2 with a
 * message naming the Debian package; any other PNG failure also leaves no PNG behind.
 */
import { resolve } from 'node:path';
import { CliniloraError } from '../errors.ts';
import { exportPngs } from '../report/png.ts';
import { writeReport } from '../report/html.ts';
import { defineCommand } from './command.ts';

export const reportCommand = defineCommand({
  name: 'report',
  description: 'Write one self-contained HTML report (plotly inline: loss, lr, metrics, confusion, reliability, config diff) for runs',
  positionals: [{ name: 'id', description: 'Run ids (or unique prefixes, or paths to run.json)', required: true, rest: true }],
  flags: {
    out: { type: 'string', short: 'o', placeholder: 'file.html', description: 'Output file (default <home>/experiments/reports/report-<id>.html)' },
    png: { type: 'string', placeholder: 'dir', description: 'Also export each figure as <dir>/<figure>.png (needs Debian chromium; CLINILORA_CHROMIUM overrides the path)' },
    'png-width': { type: 'string', placeholder: 'px', description: 'PNG width in pixels (default 1000; heights are the figures’)' },
    home: { type: 'string', placeholder: 'dir', description: 'Where experiments/runs lives (default CLINILORA_HOME or the package root)' },
  },
  async run({ flags, positionals, stdout }) {
    let width: number | undefined;
    if (flags['png-width'] !== undefined) {
      width = Number(flags['png-width']);
      if (!Number.isInteger(width) || width < 100 || width > 8000) {
        throw new CliniloraError('E_ARG', 'bad PNG width', { field: '--png-width', expected: 'an integer from 100 to 8000', found: flags['png-width'] });
      }
    }
    const r = writeReport(positionals, { ...(flags.home !== undefined ? { root: flags.home } : {}), ...(flags.out !== undefined ? { out: flags.out } : {}) });
    stdout.write(`report ${r.file} (${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${r.data.runs.length} run(s), ${r.figures.length} figure(s))\n`);
    for (const n of r.data.notes) stdout.write(`note: ${n}\n`);
    if (flags.png !== undefined) {
      if (r.figures.length === 0) stdout.write('png: no figures to export\n');
      const files = await exportPngs(r.file, r.figures, resolve(flags.png), width !== undefined ? { width } : {});
      for (const f of files) stdout.write(`png ${f}\n`);
    }
    return 0;
  },
});

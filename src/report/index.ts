/** Self-contained HTML reports of runs (plotly inline) and their PNG export through headless Chromium. */
export { reportData, reportFromRecords, type ConfusionData, type ReliabilityData, type ReportData, type ReportRun, type Series } from './data.ts';
export { reportFigures, type Figure, type Trace } from './figures.ts';
export { plotlyBundle, renderReportHtml, writeReport, PLOTLY_PACKAGE, type RenderOptions, type WriteReportOptions, type WrittenReport } from './html.ts';
export { exportPngs, findChromium, withChromium, pngSize, chromiumMissing, CHROMIUM_PACKAGE, CHROMIUM_FLAGS, type PngOptions, type ChromiumPage, type ChromiumOptions } from './png.ts';

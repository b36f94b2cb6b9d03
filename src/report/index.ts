/** Self-contained HTML reports of runs (plotly inline) and their PNG export through headless Chromium. */
export { reportData, reportFromRecords, type ConfusionData, type ReliabilityData, type ReportData, type ReportRun, type Series } from './data.ts';
export { reportFigures, type Figure, type Trace } from './figures.ts';
export { plotlyBundle, renderReportHtml, writeReport, PLOTLY_PACKAGE, type RenderOptions, type WriteReportOptions, type WrittenReport } from './html.ts';
export { exportPngs, findChromium, CHROMIUM_FLAGS, PLAYWRIGHT_CORE_VERSION, type PngOptions } from './png.ts';

/**
 * Notebook helpers, importable in cells as `clinilora/notebook` (the kernel maps that name here):
 * display helpers that render in Jupyter and stay readable in a saved notebook, the live loss curve,
 * the LoRA diagram, run origins, and the headless notebook runner behind `clinilora notebooks run`.
 */
export { display, clearOutput, html, markdown, svg, text, escapeHtml, Rendered, type DisplayHandle } from './display.ts';
export { MIME_BUNDLE, isDisplayable, toMimeBundle, currentSink, type Displayable, type MimeBundle, type CellSink, type DisplayMessage } from './display-channel.ts';
export { table, metricsTable, formatCell, Table, type TableCell, type TableInput, type TableOptions, type FrameLike } from './table.ts';
export { plot, figureSummary, resetPlotlyBundle, PlotlyOutput, type PlotlyFigure, type PlotlyTrace, type PlotOptions } from './plotly.ts';
export { lineChartSvg, ticks, type LineSeries, type LineChartOptions } from './svg-chart.ts';
export { LossCurve, lossCurve, type LossCurveOptions } from './loss-curve.ts';
export { loraDiagram, loraFacts, LoraDiagram, type LoraDiagramOptions, type LoraDiagramFacts } from './lora-diagram.ts';
export { readPacket, fillPacket, type PacketItem, type PacketView, type PacketRating, type FillPacketOptions } from './review-packets.ts';
export { notebookOrigin, currentCell, NOTEBOOK_ENV, type NotebookOrigin, type CellContext } from './origin.ts';

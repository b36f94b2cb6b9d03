/**
 * The "clinilora (TypeScript)" Jupyter kernel: tslab's ZeroMQ server with our cell engine behind it.
 * It fixes what keeps plain tslab 1.0.22 from passing jupyter_kernel_test (FACTS): kernel_info_reply
 * carries `status`, a failed cell sends an `error` message and an execute_reply with ename/evalue/
 * traceback (and nothing on stderr), a trailing expression is an `execute_result`, comm_info_request
 * gets a comm_info_reply, and shell requests are handled one at a time. It also announces the code
 * (`execute_input`) and tells the engine which notebook cell runs (for run origins).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../data/index.ts';
import type { DisplayMessage, MimeBundle } from './display-channel.ts';
import { createCellEngine, type CellEngine } from './engine.ts';
import { NOTEBOOK_ENV, type CellContext } from './origin.ts';

export const KERNEL_NAME = 'clinilora';
export const KERNEL_DISPLAY_NAME = 'clinilora (TypeScript)';

/** The slice of a tslab ZmqMessage we use. */
interface ZmqMessage {
  header: { msg_type: string; msg_id: string };
  metadata: Record<string, unknown>;
  content: Record<string, unknown>;
  createReply(): ZmqMessage;
  signAndSend(key: string, sock: unknown): void;
}
interface ZmqServerBase {
  connInfo: { key: string };
  iopub: unknown;
  shell: unknown;
  init(): Promise<void>;
  handleShellMessage(sock: unknown, ...frames: unknown[]): Promise<void>;
}
type ZmqServerClass = new (handler: unknown, configPath: string) => ZmqServerBase;

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** The cell a request runs, from its metadata (JupyterLab sends `cellId`; our runner `clinilora`). */
function cellContext(metadata: Record<string, unknown>, executionCount: number | null): CellContext {
  const ours = (metadata.clinilora ?? {}) as { notebook?: unknown; cellIndex?: unknown };
  const cellId = typeof metadata.cellId === 'string' ? metadata.cellId : null;
  const env = process.env[NOTEBOOK_ENV.notebook] ?? process.env.JPY_SESSION_NAME;
  const notebook = typeof ours.notebook === 'string' ? ours.notebook : env !== undefined && env !== '' ? env : null;
  let cellIndex = typeof ours.cellIndex === 'number' ? ours.cellIndex : null;
  if (cellIndex === null && cellId !== null && notebook !== null) {
    // The saved notebook knows where a cell id sits (it may be stale; then the index stays null).
    try {
      const nb = JSON.parse(readFileSync(notebook, 'utf8')) as { cells?: { id?: string }[] };
      const i = (nb.cells ?? []).findIndex((c) => c.id === cellId);
      if (i >= 0) cellIndex = i;
    } catch {
      // not readable as a notebook: no index
    }
  }
  return { notebook, cellIndex, cellId, executionCount };
}

export function kernelInfo(): Record<string, unknown> {
  const req = createRequire(join(packageRoot(), 'package.json'));
  const tsVersion = (createRequire(req.resolve('tslab'))('@tslab/typescript-for-tslab/package.json') as { version: string }).version;
  return {
    status: 'ok',
    protocol_version: '5.3',
    implementation: KERNEL_NAME,
    implementation_version: packageVersion(),
    language_info: {
      name: 'typescript',
      version: tsVersion,
      mimetype: 'text/typescript',
      file_extension: '.ts',
      // What tslab sends so both Notebook and JupyterLab highlight TypeScript.
      codemirror_mode: { mode: 'typescript', name: 'javascript', typescript: true },
    },
    banner: `${KERNEL_DISPLAY_NAME}: tslab with the clinilora library importable as 'clinilora'`,
    help_links: [],
  };
}

/** Starts the kernel on a Jupyter connection file; resolves once the sockets are bound. */
export async function startKernel(connectionFile: string): Promise<void> {
  const engine: CellEngine = await createCellEngine({ cwd: process.cwd(), keepStreams: true });
  const req = createRequire(join(packageRoot(), 'package.json'));
  const { ZmqServer } = req(req.resolve('tslab/dist/jupyter.js')) as { ZmqServer: ZmqServerClass };
  let executionCount = 0;

  // The handler tslab's server calls for the requests we do not take over below.
  const handler = {
    handleKernel: () => kernelInfo(),
    handleIsComplete: (r: { code: string }) => engine.isComplete(r.code),
    handleInspect: (r: { code: string; cursor_pos: number }) => {
      const text = engine.inspect(r.code, r.cursor_pos);
      return { status: 'ok', found: text !== null, data: text !== null ? { 'text/plain': text } : {}, metadata: {} };
    },
    handleComplete: (r: { code: string; cursor_pos: number }) => {
      const c = engine.complete(r.code, r.cursor_pos);
      return { status: 'ok', cursor_start: c.start, cursor_end: c.end, matches: c.matches, metadata: {} };
    },
    handleShutdown: (r: { restart?: boolean }) => ({ status: 'ok', restart: r.restart === true }),
    close: () => {
      engine.close();
      // Jupyter restarts by starting a new process; leave once the reply is out.
      setTimeout(() => process.exit(0), 50).unref();
    },
  };

  class Server extends ZmqServer {
    private shellChain: Promise<void> = Promise.resolve();

    override async handleShellMessage(sock: unknown, ...frames: unknown[]): Promise<void> {
      // tslab handles requests concurrently; a kernel answers shell requests in order.
      if (sock !== this.shell) return super.handleShellMessage(sock, ...frames);
      const next = this.shellChain.then(() => super.handleShellMessage(sock, ...frames));
      this.shellChain = next.catch(() => undefined);
      return next;
    }

    private publish(parent: ZmqMessage, msgType: string, content: Record<string, unknown>): void {
      const m = parent.createReply();
      m.header.msg_type = msgType;
      m.content = content;
      m.signAndSend(this.connInfo.key, this.iopub);
    }

    async handleExecute(sock: unknown, msg: ZmqMessage): Promise<void> {
      const code = String(msg.content.code ?? '');
      const silent = msg.content.silent === true;
      const store = msg.content.store_history !== false && !silent;
      if (store) executionCount++;
      const count = executionCount;
      if (!silent) this.publish(msg, 'execute_input', { code, execution_count: count });
      const sink = {
        stream: (name: 'stdout' | 'stderr', text: string) => {
          if (!silent) this.publish(msg, 'stream', { name, text });
        },
        display: (d: DisplayMessage, update: boolean) => {
          if (!silent) this.publish(msg, update ? 'update_display_data' : 'display_data', { data: d.data, metadata: d.metadata, transient: d.transient ?? {} });
        },
        clearOutput: (wait: boolean) => {
          if (!silent) this.publish(msg, 'clear_output', { wait });
        },
      };
      const outcome = await engine.execute(code, sink, cellContext(msg.metadata, count));
      const reply = msg.createReply();
      reply.header.msg_type = 'execute_reply';
      if (outcome.status === 'ok') {
        const result: MimeBundle | null = outcome.result;
        if (result !== null && !silent) this.publish(msg, 'execute_result', { execution_count: count, data: result, metadata: {} });
        reply.content = { status: 'ok', execution_count: count, payload: [], user_expressions: {} };
      } else {
        if (!silent) this.publish(msg, 'error', { ...outcome.error });
        reply.content = { status: 'error', execution_count: count, ...outcome.error };
      }
      reply.signAndSend(this.connInfo.key, sock);
    }

    handleCommInfoRequest(sock: unknown, msg: ZmqMessage): void {
      // tslab answers this with a message typed complete_reply.
      const reply = msg.createReply();
      reply.header.msg_type = 'comm_info_reply';
      reply.content = { status: 'ok', comms: {} };
      reply.signAndSend(this.connInfo.key, sock);
    }
  }

  process.on('SIGINT', () => engine.interrupt());
  // Errors that escape a cell (a rejected promise nobody awaited) go to the last cell's stderr.
  process.on('uncaughtException', (err) => console.error('Uncaught exception:', err));
  process.on('unhandledRejection', (reason) => console.error('Unhandled promise rejection:', reason));
  const server = new Server(handler, connectionFile);
  await server.init();
}

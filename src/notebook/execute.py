"""Executes one notebook with Jupyter (nbclient over jupyter_client) for `clinilora notebooks run`.

    python3 execute.py IN.ipynb OUT.ipynb --kernel NAME --cwd DIR [--timeout S] [--notebook PATH]
                       [--source-index JSON]

Each execute_request carries metadata {"cellId": ..., "clinilora": {"notebook": PATH, "cellIndex": i}}
so the kernel knows which cell runs (run origins). The executed notebook is written to OUT even when
a cell fails. The last stdout line is JSON: {"status": "ok"} or {"status": "error", "cell": i,
"ename": ..., "evalue": ...}. Exit code 0 either way; 2 for bad usage or a missing Jupyter.
"""

import argparse
import json
import sys

try:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
except ImportError as e:  # pragma: no cover - reported to the caller
    print(json.dumps({"status": "missing", "error": str(e)}))
    sys.exit(2)


class Client(NotebookClient):
    """An nbclient that tags each execute_request with the cell it runs."""

    notebook_path = ""
    current_cell = None
    source_index = None

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        self.current_cell = cell_index
        kc = self.kc
        if not getattr(kc, "_clinilora_wrapped", False):
            client = self

            def execute(code, silent=False, store_history=True, user_expressions=None, allow_stdin=None, stop_on_error=True):
                content = dict(
                    code=code,
                    silent=silent,
                    store_history=store_history,
                    user_expressions=user_expressions or {},
                    allow_stdin=False if allow_stdin is None else allow_stdin,
                    stop_on_error=stop_on_error,
                )
                i = client.current_cell
                cell_id = client.nb.cells[i].get("id") if i is not None else None
                # The index in the notebook as given (the injected parameters cell has none).
                source_i = client.source_index[i] if client.source_index is not None and i is not None else i
                metadata = {"clinilora": {"notebook": client.notebook_path, "cellIndex": source_i}}
                if cell_id:
                    metadata["cellId"] = cell_id
                msg = kc.session.msg("execute_request", content, metadata=metadata)
                kc.shell_channel.send(msg)
                return msg["header"]["msg_id"]

            kc.execute = execute
            kc._clinilora_wrapped = True
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--cwd", required=True)
    ap.add_argument("--timeout", type=int, default=1800, help="seconds a cell may run")
    ap.add_argument("--startup-timeout", type=int, default=180)
    ap.add_argument("--notebook", default="", help="path recorded as the cells' notebook")
    ap.add_argument("--source-index", default="", help="JSON list: each cell's index in --notebook (null: injected)")
    args = ap.parse_args(argv)

    nb = nbformat.read(args.input, as_version=4)
    client = Client(
        nb,
        kernel_name=args.kernel,
        timeout=args.timeout,
        startup_timeout=args.startup_timeout,
        record_timing=False,
        resources={"metadata": {"path": args.cwd}},
    )
    client.notebook_path = args.notebook or args.input
    if args.source_index:
        client.source_index = json.loads(args.source_index)
    result = {"status": "ok"}
    try:
        client.execute()
    except CellExecutionError as e:
        result = {"status": "error", "cell": client.current_cell, "ename": e.ename, "evalue": e.evalue}
    except CellTimeoutError as e:
        result = {"status": "error", "cell": client.current_cell, "ename": "CellTimeoutError", "evalue": str(e).strip().splitlines()[0]}
    except DeadKernelError as e:
        result = {"status": "error", "cell": client.current_cell, "ename": "DeadKernelError", "evalue": str(e)}
    nbformat.write(nb, args.output)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Conformance of the "clinilora (TypeScript)" kernel with jupyter_kernel_test (Jupyter's message
schema v5). Run by test/notebook-kernel.test.ts with /usr/bin/python3 -m unittest, JUPYTER_PATH set
to a prefix holding the kernelspec, CLINILORA_KERNEL_NAME naming it."""

import os
import unittest

import jupyter_kernel_test
from jupyter_client.utils import run_sync

TIMEOUT = 120  # the first cell loads the library's type declarations


class CliniloraKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = os.environ.get("CLINILORA_KERNEL_NAME", "clinilora")
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = "console.log('hello, world')"
    code_stderr = "console.error('something went wrong')"
    code_generate_error = "throw new Error('boom')"
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "[1, 2, 3].map((x) => x * 2)", "result": "[ 2, 4, 6 ]"},
        {"code": "import { NF4_CODES } from 'clinilora';\nNF4_CODES.length", "result": "16"},
    ]
    code_display_data = [
        {"code": "import { display } from 'tslab';\ndisplay.html('<b>tslab</b>')", "mime": "text/html"},
        {"code": "import { html } from 'clinilora/notebook';\nhtml('<i>ours</i>').show()", "mime": "text/html"},
        {"code": "import { loraDiagram } from 'clinilora/notebook';\nloraDiagram({ inFeatures: 8, outFeatures: 6, r: 2, alpha: 4 }).show()", "mime": "image/svg+xml"},
    ]
    code_clear_output = "import { clearOutput } from 'clinilora/notebook';\nclearOutput()"
    completion_samples = [{"text": "Math.ab", "matches": {"abs"}}]
    complete_code_samples = ["1 + 1", "const a = 1;", "function f() { return 1; }"]
    incomplete_code_samples = ["function f() {", "if (true) {", "const xs = ["]
    code_inspect_sample = "Math.max"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Warm up: the first cell type-checks against the library's declarations.
        cls.kc.execute_interactive("import { NF4_CODES } from 'clinilora';", timeout=TIMEOUT)

    def execute_helper(self, code, timeout=TIMEOUT, **kw):
        return super().execute_helper(code, timeout=timeout, **kw)

    # --- beyond the stock suite -------------------------------------------------------------------

    def test_error_reply_fields(self):
        """A failed cell's reply and error message name the error; a TypeScript error is one too."""
        for code, ename, evalue in [
            ("throw new RangeError('out of range')", "RangeError", "out of range"),
            ("const n: number = 'text';", "TypeScriptError", "not assignable"),
        ]:
            with self.subTest(code=code):
                self.flush_channels()
                reply, output_msgs = self.execute_helper(code)
                self.assertEqual(reply["content"]["status"], "error")
                self.assertEqual(reply["content"]["ename"], ename)
                self.assertIn(evalue, reply["content"]["evalue"])
                errors = [m for m in output_msgs if m["msg_type"] == "error"]
                self.assertEqual(len(errors), 1)
                self.assertEqual(errors[0]["content"]["ename"], ename)

    def test_update_display_data(self):
        """A display handle's update goes out as update_display_data with the same display_id."""
        self.flush_channels()
        code = "import { html } from 'clinilora/notebook';\nconst h = html('<p>one</p>').show();\nh.update(html('<p>two</p>'));"
        reply, output_msgs = self.execute_helper(code)
        self.assertEqual(reply["content"]["status"], "ok")
        kinds = [m["msg_type"] for m in output_msgs]
        self.assertEqual(kinds, ["display_data", "update_display_data"])
        first, second = output_msgs
        self.assertEqual(first["content"]["transient"]["display_id"], second["content"]["transient"]["display_id"])
        self.assertIn("two", second["content"]["data"]["text/html"])

    def test_state_persists_and_counts(self):
        """Declarations carry over between cells and execution_count grows."""
        self.flush_channels()
        r1, _ = self.execute_helper("let counter = 41;")
        r2, out = self.execute_helper("counter + 1")
        self.assertEqual(r2["content"]["execution_count"], r1["content"]["execution_count"] + 1)
        results = [m for m in out if m["msg_type"] == "execute_result"]
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "42")

    def test_cell_origin(self):
        """A cell sees which notebook cell it is (what runs record as their origin)."""
        self.flush_channels()
        msg_id = self.kc.execute("import { notebookOrigin } from 'clinilora/notebook';")
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["status"], "ok")
        msg = self.kc.session.msg(
            "execute_request",
            {"code": "notebookOrigin()", "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
            metadata={"cellId": "abc", "clinilora": {"notebook": "/tmp/x.ipynb", "cellIndex": 7}},
        )
        self.kc.shell_channel.send(msg)
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        self.assertEqual(reply["content"]["status"], "ok")
        while True:
            m = run_sync(self.kc.iopub_channel.get_msg)(timeout=TIMEOUT)
            if m["parent_header"].get("msg_id") == msg["header"]["msg_id"] and m["msg_type"] == "execute_result":
                text = m["content"]["data"]["text/plain"]
                break
        self.assertIn("/tmp/x.ipynb", text)
        self.assertIn("cell: 7", text)
        self.assertIn("'abc'", text)


if __name__ == "__main__":
    unittest.main()

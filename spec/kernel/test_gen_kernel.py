"""The gen Jupyter kernel through Jupyter's own client: jupyter_kernel_test's protocol checks, then
interrupts, crashes, completion, output order and progress bars. spec/kernel_spec.lua runs this
with JUPYTER_PATH pointing at a freshly installed kernel spec:

    /usr/bin/python3 spec/kernel/test_gen_kernel.py -v

jupyter_kernel_test skips its pager, history and clear_output checks: the kernel has no pager,
keeps no history database and has no clear_output call.
"""

import queue
import time
import unittest

import jupyter_kernel_test


class GenKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "gen"
    language_name = "lua"
    file_extension = ".lua"

    code_hello_world = 'print("hello, world")'
    code_stderr = 'io.stderr:write("to stderr\\n")'
    completion_samples = [
        {"text": "gen.nn.Lin", "matches": {"Linear"}},
        {"text": "gen.optim.Ada", "matches": {"Adam", "AdamW"}},
        {"text": "gen.image.sh", "matches": {"show"}},
    ]
    complete_code_samples = ["1 + 1", "x = gen.ones(2)", "for i = 1, 2 do print(i) end"]
    incomplete_code_samples = ["for i = 1, 3 do", "f(1,", "function g()"]
    invalid_code_samples = ["1 +* 2", "end end"]
    code_generate_error = 'error("boom")'
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "gen.tensor{{1, 2}, {3, 4}}:t()", "result": " 1 3\n 2 4\n[gen.FloatTensor of size 2x2]"},
        {"code": "a = 1\nb = 2\na + b", "result": "3"},
        {"code": '{a = 1, b = {2, 3}}, "s"', "result": '{a = 1, b = {2, 3}}\n"s"'},
    ]
    code_display_data = [
        {"code": "gen.image.show(gen.rand(3, 8, 8))", "mime": "image/png"},
        {"code": "gen.ui.plot(nil, {series = {{y = {3, 1, 2}}}});", "mime": "image/png"},
    ]
    code_inspect_sample = "gen.zeros"

    # ---------------------------------------------------------------- helpers

    def run_cell(self, code, interrupt_after=None, timeout=60):
        """Executes code and returns (reply content, [(msg_type, content), ...] of its outputs)."""
        self.flush_channels()
        msg_id = self.kc.execute(code)
        if interrupt_after is not None:
            time.sleep(interrupt_after)
            self.km.interrupt_kernel()
        outputs = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                break
            if kind not in ("status", "execute_input"):
                outputs.append((kind, msg["content"]))
        while True:
            reply = self.kc.get_shell_msg(timeout=10)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"], outputs

    def result_text(self, outputs):
        return "\n".join(c["data"]["text/plain"] for k, c in outputs if k == "execute_result")

    # ---------------------------------------------------------------- beyond the protocol

    def test_interrupt_twice_keeps_the_session(self):
        self.run_cell("kept = 41")
        loops = [
            "local i = 0 while true do i = i + 1 end",  # pure Lua
            # a training-like loop: native ops and autograd between the checks
            "local w = gen.nn.Parameter(gen.randn(64, 64)) while true do "
            "local loss = (gen.matmul(gen.randn(32, 64), w):tanh() ^ 2):mean() loss:backward() end",
        ]
        for code in loops:
            started = time.monotonic()
            reply, outputs = self.run_cell(code, interrupt_after=1.0, timeout=30)
            self.assertEqual(reply["status"], "error")
            self.assertEqual(reply["ename"], "Interrupted")
            self.assertIn("interrupted", reply["evalue"])
            self.assertLess(time.monotonic() - started, 10)
            errors = [c for k, c in outputs if k == "error"]
            self.assertEqual(len(errors), 1)
            reply, outputs = self.run_cell("kept + 1")
            self.assertEqual(reply["status"], "ok")
            self.assertEqual(self.result_text(outputs), "42")

    def test_a_crashed_child_is_reported_and_replaced(self):
        self.run_cell("doomed = 1")
        for code, how in [
            ("os.exit(3)", "exited with status 3"),
            # a native crash, as a segfault in C code would end the process
            ('local f = io.open("/proc/self/stat") local pid = f:read("l"):match("^%d+") f:close() '
             'os.execute("kill -SEGV " .. pid) while true do end', "killed by SIGSEGV"),
        ]:
            reply, outputs = self.run_cell(code, timeout=30)
            self.assertEqual(reply["status"], "error")
            self.assertEqual(reply["ename"], "KernelDied")
            self.assertIn(how, reply["evalue"])
            reply, outputs = self.run_cell("doomed, gen.ones(2):sum():item()")
            self.assertEqual(reply["status"], "ok")
            self.assertEqual(self.result_text(outputs), "nil\n2.0")

    def test_errors_show_the_lua_message_and_traceback(self):
        reply, outputs = self.run_cell("local function f() return gen.matmul(gen.ones(2, 3), gen.ones(4, 2)) + 1 end\nlocal y = f()")
        self.assertEqual(reply["status"], "error")
        self.assertIn("gen.matmul: shapes {2,3} and {4,2} do not align (3 ~= 4)", reply["evalue"])
        tb = "\n".join(reply["traceback"])
        self.assertIn("stack traceback:", tb)
        self.assertIn("in local 'f'", tb)
        self.assertNotIn("xpcall", tb)
        reply, outputs = self.run_cell("1 +* 2")
        self.assertEqual(reply["status"], "error")
        self.assertIn("syntax error", "\n".join(reply["traceback"]))

    def test_output_keeps_its_order(self):
        reply, outputs = self.run_cell('print("before")\ngen.image.show(gen.zeros(1, 4, 4))\nprint("after")\n"value"')
        self.assertEqual(reply["status"], "ok")
        kinds = [(k, c.get("text")) for k, c in outputs]
        self.assertEqual(
            kinds,
            [("stream", "before\n"), ("display_data", None), ("stream", "after\n"), ("execute_result", None)],
        )

    def test_a_progress_bar_is_one_output_updated_in_place(self):
        reply, outputs = self.run_cell(
            "local p = gen.ui.progress(6, {label = 'fit'}) for i = 1, 6 do "
            "local t = gen.time() while gen.time() - t < 0.1 do end p:update(i, {loss = 1 / i}) end p:close()"
        )
        self.assertEqual(reply["status"], "ok")
        first = [c for k, c in outputs if k == "display_data"]
        updates = [c for k, c in outputs if k == "update_display_data"]
        self.assertEqual(len(first), 1)
        self.assertGreaterEqual(len(updates), 1)
        display_id = first[0]["transient"]["display_id"]
        self.assertTrue(all(u["transient"]["display_id"] == display_id for u in updates))
        self.assertIn("fit [##############################] 6/6", updates[-1]["data"]["text/plain"])
        self.assertNotIn("stream", [k for k, c in outputs])

    def test_completion_from_the_live_state(self):
        self.run_cell("xs = gen.ones(2, 3)\nnet = gen.nn.Linear(2, 3)")
        for text, expected in [
            ("xs:resh", "reshape"),
            ("xs.sha", "shape"),
            ("net:param", "parameters"),
            ("net.wei", "weight"),
            ("gen.ran", "randn"),
            ("pri", "print"),
        ]:
            self.flush_channels()
            msg_id = self.kc.complete(text, len(text))
            reply = self.kc.get_shell_msg(timeout=10)
            self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
            self.assertIn(expected, reply["content"]["matches"], text)
            word = text.replace(":", ".").rsplit(".", 1)[-1]
            self.assertEqual(reply["content"]["cursor_start"], len(text) - len(word))


if __name__ == "__main__":
    unittest.main()

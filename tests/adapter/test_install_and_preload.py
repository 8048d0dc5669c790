"""install.py and preload.py as the WebUI runs them (HOST_CONTRACT.md 6.1, 6.2)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKEHOST = ROOT / "tests" / "fakehost"


def _run_install(tmp_path, *, installed="", commandline_args="", pip_fails: bool | str = False, env_extra=None):
    log = tmp_path / "pip.log"
    log.touch()
    env = {
        **os.environ,
        "PYTHONPATH": str(FAKEHOST),  # the host puts the webui root (with launch.py) on PYTHONPATH
        "FAKE_LAUNCH_LOG": str(log),
        "FAKE_LAUNCH_INSTALLED": installed,
        "COMMANDLINE_ARGS": commandline_args,
        **(env_extra or {}),
    }
    if pip_fails:
        env["FAKE_LAUNCH_PIP_FAILS"] = "1" if pip_fails is True else pip_fails
    # Hide our real site-packages distributions so that "missing" is decided by the fake launch only.
    code = (
        "import importlib.metadata, runpy, sys\n"
        "def _missing(name):\n"
        "    raise importlib.metadata.PackageNotFoundError(name)\n"
        "if 'torch' not in sys.argv[1:]: importlib.metadata.distribution = _missing\n"
        f"runpy.run_path({str(ROOT / 'install.py')!r}, run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False,
                            cwd=tmp_path)  # fmt: skip
    return result, log.read_text(encoding="utf-8").splitlines()


def test_installs_only_what_is_missing_by_distribution_name(tmp_path):
    result, commands = _run_install(tmp_path, installed="clip-interrogator,gguf,onnxruntime")
    assert result.returncode == 0, result.stderr
    assert len(commands) == 1
    assert commands[0].startswith('install "llama-cpp-python')
    assert "--extra-index-url" in commands[0]


def test_onnxruntime_is_added_gpu_beside_a_cuda_torch_and_never_replaced(tmp_path):
    def run(name, installed, env_extra=None):
        folder = tmp_path / name
        folder.mkdir()
        base = "clip-interrogator,gguf,llama-cpp-python"
        return _run_install(folder, installed=base + installed, env_extra=env_extra)[1]

    assert run("cpu", "") == ['install "onnxruntime"']
    assert run("cuda", "", {"INTERSTABLE_LLAMA_WHEEL_VARIANT": "cu121"}) == ['install "onnxruntime-gpu"']
    assert run("gpu-there", ",onnxruntime-gpu") == []
    assert run("directml-there", ",onnxruntime-directml") == []


def test_never_installs_host_owned_packages(tmp_path):
    result, commands = _run_install(tmp_path)
    assert result.returncode == 0
    text = " ".join(commands)
    for owned in ("torch", "gradio", "transformers", "numpy", "pillow"):
        assert f'"{owned}' not in text.lower()


def test_skip_install_is_honoured(tmp_path):
    result, commands = _run_install(tmp_path, commandline_args="--skip-install")
    assert result.returncode == 0
    assert commands == []


def test_a_pip_failure_says_each_step_ends_with_one_actionable_line_and_exits_zero(tmp_path):
    result, commands = _run_install(tmp_path, installed="clip-interrogator,gguf,onnxruntime", pip_fails=True)
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines() if line.startswith("[InterStable]")]
    assert "no prebuilt llama-cpp-python wheel in the cpu index" in lines[0]
    assert "building llama-cpp-python from source" in lines[1]
    assert "could not install llama-cpp-python" in lines[-1]
    assert "-m pip install" in lines[-1]
    assert "--only-binary" not in lines[-1]
    assert commands[-1].endswith("[live]")  # the source build shows pip's output: never a silent 20-minute start


def _llama(commands):
    return [c for c in commands if "llama-cpp-python" in c]


def test_a_cuda_wheel_is_tried_first_wheel_only_then_the_cpu_wheel(tmp_path):
    env = {"INTERSTABLE_LLAMA_WHEEL_VARIANT": "cu121"}
    result, commands = _run_install(tmp_path, installed="clip-interrogator,gguf,onnxruntime-gpu", env_extra=env)
    assert result.returncode == 0
    assert _llama(commands) == [
        (
            'install "llama-cpp-python>=0.3.2" --extra-index-url https://abetlen.github.io/llama-cpp-python/whl/cu121 '
            "--only-binary llama-cpp-python"
        )
    ]
    (tmp_path / "again").mkdir()
    result, commands = _run_install(tmp_path / "again", installed="clip-interrogator,gguf,onnxruntime-gpu",
                                    env_extra=env, pip_fails="whl/cu121")  # fmt: skip
    llama = _llama(commands)
    assert len(llama) == 2
    assert "whl/cpu --only-binary" in llama[1]
    assert "no prebuilt llama-cpp-python wheel in the cu121 index" in result.stdout
    assert "from source" not in result.stdout


def test_no_cuda_wheel_for_cuda_11_installs_the_cpu_build_and_says_how_to_get_gpu_offload(tmp_path, monkeypatch):
    module = _install_module(monkeypatch, "2.0.1+cu118")
    variant, note = module.wheel_choice()
    assert variant == "cpu"
    assert "cu118" in note
    assert "GGML_CUDA=on" in note


def _install_module(monkeypatch, torch_version):
    spec = importlib.util.spec_from_file_location("interstable_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.delenv("INTERSTABLE_LLAMA_WHEEL_VARIANT", raising=False)
    monkeypatch.setattr(module.importlib.metadata, "version", lambda name: torch_version)
    return module


@pytest.mark.parametrize(
    ("torch_version", "variant"),
    [("2.1.2+cu121", "cu121"), ("2.4.0+cu124", "cu124"), ("2.7.0+cu128", "cu124"), ("2.0.1+cu118", "cpu"),
     ("2.9.0+cu130", "cpu"), ("2.1.2", "cpu"), ("2.3.0+cpu", "cpu")],
)  # fmt: skip
def test_llama_wheel_variant_follows_the_webui_torch_to_an_index_that_exists(monkeypatch, torch_version, variant):
    assert _install_module(monkeypatch, torch_version).llama_wheel_variant() == variant


def test_preload_adds_prefixed_flags():
    spec = importlib.util.spec_from_file_location("preload.py", ROOT / "preload.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parser = argparse.ArgumentParser()
    module.preload(parser)
    args = parser.parse_args(["--interstable-llm-dir", "/models/llm", "--interstable-gpu-layers", "auto"])
    assert (args.interstable_llm_dir, args.interstable_gpu_layers) == ("/models/llm", "auto")
    assert parser.parse_args([]).interstable_llm_dir is None


def test_settings_read_prefers_command_line_flags(fake_host, tmp_path):
    from modules import script_callbacks

    from interstable.webui import settings

    script_callbacks.on_ui_settings(settings.register)
    script_callbacks.ui_settings_callback()
    assert settings.read().llm_dir == Path(fake_host.models_path) / "LLM"
    fake_host.opts.interstable_llm_dir = str(tmp_path / "from-settings")
    assert settings.read().llm_dir == tmp_path / "from-settings"
    fake_host.cmd_opts.interstable_llm_dir = str(tmp_path / "from-flag")
    try:
        assert settings.read().llm_dir == tmp_path / "from-flag"
    finally:
        del fake_host.cmd_opts.interstable_llm_dir
    assert all(key.startswith("interstable_") for key in fake_host.opts.data_labels if "interstable" in key)

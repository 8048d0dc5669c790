"""GPU memory handling of the prompt writer: the CPU retry after an out-of-memory, and ``n_gpu_layers="auto"``.

This machine's llama-cpp-python is a CPU build, so the GPU is simulated: ``llama_supports_gpu_offload`` is patched to
say yes, the free VRAM is patched, and a wrapped ``Llama`` constructor fails the way llama-cpp-python 0.3.36 fails
on a CUDA out-of-memory (``ValueError("Failed to load model from file ...")`` with the reason only in llama.cpp's
log, or ``RuntimeError("llama_decode returned -2")`` while generating). A real ``Llama`` with ``n_gpu_layers != 0``
runs on the CPU here, so the tiny model still writes real text.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

import interstable.llm.llama_log as llama_log_module  # noqa: E402 (after the skip)
import interstable.llm.loading as llm_module  # noqa: E402
from interstable.errors import ModelLoadError  # noqa: E402
from interstable.llm import (  # noqa: E402
    DEFAULT_RESERVE_BYTES,
    LlamaPromptWriter,
    LoadSettings,
    cache_stats,
    choose_gpu_layers,
    close_all,
    gguf_layer_bytes,
)
from interstable.prompt import PromptRequest  # noqa: E402

REQUEST = PromptRequest(caption="a cat on a sofa", user_prompt="oil painting")
CUDA_OOM_LOG = (
    b"ggml_backend_cuda_buffer_type_alloc_buffer: allocating 4096.00 MiB on device 0: "
    b"cudaMalloc failed: out of memory\n"
)
GIB = 1024**3
# The tiny model's blocks and output head (output.weight 117120 + output_norm 256 bytes), checked against
# gguf.GGUFReader's tensor sizes in test_layer_bytes_match_the_gguf_tensor_table.
TINY_BLOCK, TINY_OUTPUT = 74240, 117376


def load(n_gpu_layers: int | str) -> LoadSettings:
    return LoadSettings(n_gpu_layers=n_gpu_layers, n_threads=1, n_threads_batch=1)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def fake_gpu(monkeypatch):
    """A "GPU build" of llama-cpp-python with an empty cache before and after each test."""
    close_all()
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    monkeypatch.setattr(llm_module, "_AUTO_CPU_WARNED", set())
    yield
    close_all()


@pytest.fixture
def constructed(monkeypatch):
    """Records the ``n_gpu_layers`` of every ``Llama`` built; ``fail_gpu`` makes the GPU ones fail."""
    real = llama_cpp.Llama
    calls: list[int] = []
    behaviour = {"fail_gpu": None, "fail_cpu": None}

    def fake(**kwargs):
        layers = kwargs["n_gpu_layers"]
        calls.append(layers)
        failure = behaviour["fail_gpu"] if layers != 0 else behaviour["fail_cpu"]
        if failure is not None:
            failure()
        return real(**kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", fake)
    return calls, behaviour


def llama_log(text: bytes) -> None:
    """Emit a line through llama.cpp's log callback, as llama.cpp itself does before it fails."""
    llama_log_module._LOG_CALLBACK[0](4, text, None)  # 4 = GGML_LOG_LEVEL_ERROR


def oom_in_log() -> None:
    llama_log(CUDA_OOM_LOG)
    raise ValueError("Failed to load model from file: model.gguf")


def oom_in_text() -> None:
    raise ValueError("Failed to create llama_context: failed to allocate CUDA0 buffer of size 1073741824")


def not_oom() -> None:
    llama_log(b"llama_model_load: error loading model: tensor 'blk.0.attn_q.weight' data is not within bounds\n")
    raise ValueError("Failed to load model from file: model.gguf")


# --- (a) out of memory: one retry on the CPU ----------------------------------------------------------------------


@pytest.mark.parametrize("failure", [oom_in_log, oom_in_text], ids=["reason-in-log", "reason-in-exception"])
def test_out_of_memory_while_loading_retries_once_on_the_cpu(tiny_mistral, constructed, caplog, failure):
    calls, behaviour = constructed
    behaviour["fail_gpu"] = failure
    expected = LlamaPromptWriter(tiny_mistral, load=load(0)).write(REQUEST, seed=5)
    close_all()
    calls.clear()
    before = cache_stats().loads
    with caplog.at_level(logging.WARNING, logger="interstable"):
        text = LlamaPromptWriter(tiny_mistral, load=load(-1)).write(REQUEST, seed=5)
    assert calls == [-1, 0]
    assert text == expected
    assert cache_stats().loads == before + 1
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "ran out of memory loading tiny-mistral.gguf with n_gpu_layers=-1" in warning.getMessage()
    assert "retrying once on the CPU" in warning.getMessage()


def test_a_load_failure_that_is_not_out_of_memory_is_not_retried(tiny_mistral, constructed):
    calls, behaviour = constructed
    behaviour["fail_gpu"] = not_oom
    with pytest.raises(ModelLoadError, match="data is not within bounds"):
        LlamaPromptWriter(tiny_mistral, load=load(-1)).load()
    assert calls == [-1]


def test_out_of_memory_on_the_cpu_too_fails_after_one_retry(tiny_mistral, constructed):
    calls, behaviour = constructed
    behaviour["fail_gpu"] = oom_in_log
    behaviour["fail_cpu"] = oom_in_log
    with pytest.raises(ModelLoadError, match=r"could not load tiny-mistral\.gguf.*out of memory"):
        LlamaPromptWriter(tiny_mistral, load=load(20)).load()
    assert calls == [20, 0]


def test_out_of_memory_on_the_cpu_is_not_retried(tiny_mistral, constructed):
    calls, behaviour = constructed
    behaviour["fail_cpu"] = oom_in_text
    with pytest.raises(ModelLoadError, match="failed to allocate"):
        LlamaPromptWriter(tiny_mistral, load=load(0)).load()
    assert calls == [0]


@pytest.fixture
def decode_fails_on_gpu(monkeypatch):
    """``Llama`` whose generation fails like a CUDA compute-buffer OOM when built with GPU layers."""
    real = llama_cpp.Llama
    built: list[int] = []
    reason = {
        "message": "llama_decode returned -2",
        "log": b"ggml_gallocr_reserve_n: failed to allocate CUDA0 buffer of size 268435456\n",
    }

    class GpuLlama(real):  # type: ignore[misc,valid-type]
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            built.append(kwargs["n_gpu_layers"])
            self.on_gpu = kwargs["n_gpu_layers"] != 0

        def eval(self, tokens):  # the writer's token loop evaluates through Llama.eval (it raises as decode fails)
            if self.on_gpu:
                llama_log(reason["log"])
                raise RuntimeError(reason["message"])
            return super().eval(tokens)

    monkeypatch.setattr(llama_cpp, "Llama", GpuLlama)
    return built, reason


def test_out_of_memory_while_generating_retries_once_on_the_cpu(tiny_mistral, decode_fails_on_gpu, caplog):
    built, _ = decode_fails_on_gpu
    expected = LlamaPromptWriter(tiny_mistral, load=load(0)).write(REQUEST, seed=9)
    close_all()
    built.clear()
    writer = LlamaPromptWriter(tiny_mistral, load=load(-1))
    progress: list[int] = []
    with caplog.at_level(logging.WARNING, logger="interstable"):
        text = writer.write(REQUEST, seed=9, on_progress=lambda done, _total: progress.append(done))
    assert text == expected
    assert built == [-1, 0]
    assert progress[0] == 1  # counted from the start again on the CPU
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "ran out of memory while tiny-mistral wrote a prompt" in warning.getMessage()
    assert "failed to allocate CUDA0 buffer" in warning.getMessage()
    stats = cache_stats()
    assert writer.write(REQUEST, seed=9) == expected  # the CPU copy stays cached: no new load, no new warning
    assert built == [-1, 0]
    assert cache_stats().loads == stats.loads
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_a_generation_failure_that_is_not_out_of_memory_is_not_retried(tiny_mistral, decode_fails_on_gpu):
    built, reason = decode_fails_on_gpu
    reason["message"] = "llama_decode returned -3"
    reason["log"] = b"ggml_cuda_compute_forward: MUL_MAT failed\n"
    with pytest.raises(ModelLoadError, match=r"llama_decode returned -3 \(llama.cpp says: .*MUL_MAT failed"):
        LlamaPromptWriter(tiny_mistral, load=load(8)).write(REQUEST, seed=1)
    assert built == [8]


# --- (b) "auto": layers from free VRAM and the GGUF's per-layer sizes --------------------------------------------

MIB = 1024**2


@pytest.mark.parametrize(
    ("free", "blocks", "output", "expected"),
    [
        (5 * GIB, (100 * MIB,) * 32, 200 * MIB, -1),  # 3.4 GB of blocks + head in 4 GiB usable
        (GIB + 32 * 100 * MIB + 199 * MIB, (100 * MIB,) * 32, 200 * MIB, 32),  # every block, not the head
        (GIB + 250 * MIB, (100 * MIB,) * 32, 200 * MIB, 2),
        (GIB + 250 * MIB, (10 * MIB,) * 30 + (200 * MIB, 200 * MIB), 0, 1),  # the last blocks go first
        (GIB + 99 * MIB, (100 * MIB,) * 32, 200 * MIB, 0),  # not one block
        (0, (100 * MIB,) * 32, 200 * MIB, 0),  # no GPU reading
    ],
    ids=["all", "blocks-only", "two", "last-first", "none", "no-vram"],
)
def test_choose_gpu_layers_with_layer_sizes(free, blocks, output, expected):
    size = sum(blocks) + output + 100 * MIB  # + token embeddings, which stay on the CPU
    assert choose_gpu_layers(free, size, len(blocks), layer_bytes=blocks, output_bytes=output) == expected


def test_choose_gpu_layers_ignores_sizes_of_the_wrong_length():
    # 33 shares of 33 MiB: the even split of the file size, as without sizes
    assert choose_gpu_layers(GIB + 330 * MIB, 33 * 33 * MIB, 32, layer_bytes=(MIB,) * 31) == 10


def test_layer_bytes_match_the_gguf_tensor_table(tiny_mistral):
    import gguf

    sizes = {t.name: int(t.n_bytes) for t in gguf.GGUFReader(tiny_mistral).tensors}
    blocks = tuple(sum(v for k, v in sizes.items() if k.startswith(f"blk.{i}.")) for i in range(2))
    assert blocks == (TINY_BLOCK, TINY_BLOCK)
    assert sizes["output.weight"] + sizes["output_norm.weight"] == TINY_OUTPUT
    assert gguf_layer_bytes(tiny_mistral) == (blocks, TINY_OUTPUT)


def write_gguf(path: Path, tensors: dict[str, int]) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    for name, count in tensors.items():
        writer.add_tensor(name, np.zeros(count, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_tied_embeddings_count_as_the_output_head(tmp_path):
    # 64 float32 = 256 bytes, a multiple of the 32-byte alignment: no padding in the sizes
    path = write_gguf(tmp_path / "tied.gguf", {"token_embd.weight": 64, "blk.0.a.weight": 8, "blk.1.a.weight": 8})
    assert gguf_layer_bytes(path) == ((32, 32), 256)


@pytest.mark.parametrize(
    "tensors",
    [{"token_embd.weight": 8, "output.weight": 8}, {"blk.0.a.weight": 8, "blk.2.a.weight": 8}],
    ids=["no-blocks", "gap"],
)
def test_no_layer_sizes_for_files_without_numbered_blocks(tmp_path, tensors):
    assert gguf_layer_bytes(write_gguf(tmp_path / "odd.gguf", tensors)) is None


def test_no_layer_sizes_for_a_missing_or_broken_file(tmp_path):
    (tmp_path / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    assert gguf_layer_bytes(tmp_path / "missing.gguf") is None
    assert gguf_layer_bytes(tmp_path / "broken.gguf") is None


@pytest.mark.parametrize(
    ("free", "expected"),
    [
        (DEFAULT_RESERVE_BYTES + TINY_BLOCK + 100, 1),  # an even split of the file would give 0 here
        (DEFAULT_RESERVE_BYTES + 2 * TINY_BLOCK + 100, 2),
        (DEFAULT_RESERVE_BYTES + 2 * TINY_BLOCK + TINY_OUTPUT, -1),
    ],
    ids=["one-block", "both-blocks", "all"],
)
def test_auto_uses_the_free_vram_and_the_real_layer_sizes(tiny_mistral, constructed, monkeypatch, free, expected):
    calls, _ = constructed
    assert tiny_mistral.stat().st_size // 3 > TINY_BLOCK + 100
    monkeypatch.setattr(llm_module, "free_vram_bytes", lambda: free)
    LlamaPromptWriter(tiny_mistral, load=load("auto")).load()
    assert calls == [expected]


def test_auto_falls_back_to_the_cpu_with_one_warning(tiny_mistral, constructed, monkeypatch, caplog):
    calls, _ = constructed
    monkeypatch.setattr(llm_module, "free_vram_bytes", lambda: DEFAULT_RESERVE_BYTES + TINY_BLOCK - 1)
    with caplog.at_level(logging.INFO, logger="interstable"):
        writer = LlamaPromptWriter(tiny_mistral, load=load("auto"))
        writer.load()
        writer.close()
        writer.load()
    assert calls == [0, 0]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert 'GPU layers "auto"' in message
    assert "runs on the CPU" in message
    assert "1024 MiB of VRAM free" in message  # 0.07 MiB under, rounded
    assert "0.1 MiB per layer" in message  # 74240 bytes
    assert any("runs on the CPU" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)

"""A whole job on the fake host with the default LLM backend, in a fresh interpreter: prints whether ``llama_cpp``
got imported or its library mapped into this process (tests/adapter/test_llm_process.py runs it; not a test itself).

An argument names the interrogator (``vision_llm``, ``vision_prompt``): the tiny vision model is put beside the LLM
(tests/adapter/test_vision_process.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PIL import Image

from interstable.args import JobConfig, to_script_args

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    from modules import processing, script_callbacks, scripts, shared

    from interstable.llm import worker
    from interstable.tinymodels import write_tiny_llama
    from interstable.webui import settings

    with tempfile.TemporaryDirectory() as tmp:
        shared.reset()
        shared.data_path, shared.models_path = tmp, str(Path(tmp) / "models")
        (Path(tmp) / "models" / "LLM").mkdir(parents=True)
        write_tiny_llama(Path(tmp) / "models" / "LLM" / "tiny-mistral.gguf")
        config = JobConfig.defaults()
        if len(sys.argv) > 1:
            from interstable.tinymodels.gguf_vision import write_tiny_vision

            write_tiny_vision(Path(tmp) / "models" / "LLM")
            config = config.replace(caption_backend=sys.argv[1], llm_model="tiny-mistral.gguf")
        script_callbacks.on_ui_settings(settings.register)
        script_callbacks.ui_settings_callback()
        shared.opts.interstable_llm_threads, shared.opts.interstable_gpu_layers = 1, "0"
        shared.opts.return_grid = False
        shared.opts.interstable_unload = "Keep loaded"
        runner = scripts.ScriptRunner(scripts.load_scripts(ROOT), is_img2img=True)
        runner.setup_ui()
        p = processing.StableDiffusionProcessingImg2Img(
            init_images=[Image.new("RGB", (64, 64), (40, 120, 200))], width=64, height=64, seed=7, batch_size=2
        )
        full = [1, *to_script_args(config)]
        p.scripts, p.script_args = runner, full
        processed = runner.run(p, *full)
        assert worker.worker_status()["state"] == "loaded"
        maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else ""
        print("images:", len(processed.images))
        print("llama_cpp imported:", any(m == "llama_cpp" or m.startswith("llama_cpp.") for m in sys.modules))
        print("libllama mapped:", "libllama" in maps or "libggml" in maps)
        worker.stop_worker()


if __name__ == "__main__":
    main()

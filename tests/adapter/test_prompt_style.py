"""The Prompt style argument on the fake host: Auto follows the loaded checkpoint's flags, the infotext records the
style used, Pony's prefix leads the prompt, and a T5 model's budget and counter come from the host."""

from __future__ import annotations

import pytest
from PIL import Image

from interstable.args import JobConfig
from interstable.prompt import PONY_PREFIX

pytestmark = pytest.mark.usefixtures("host")


def _run(runner, script, config: JobConfig, prompt: str = "", **more):
    from modules import infotext_utils, processing

    from interstable.args import to_script_args

    p = processing.StableDiffusionProcessingImg2Img(
        init_images=[Image.new("RGB", (64, 64), "teal")], width=64, height=64, steps=20, prompt=prompt, **more
    )
    args = [c.value for c in runner.inputs[1:]]
    args[script.args_from - 1 : script.args_to - 1] = to_script_args(config)
    full = [runner.selectable_scripts.index(script) + 1, *args]
    p.scripts, p.script_args = runner, full
    processed = runner.run(p, *full)
    return processed, infotext_utils.parse_generation_parameters(processed.infotexts[0])


@pytest.mark.parametrize(
    ("family", "filename", "label"),
    [
        ("sd1", "v1-5-pruned-emaonly.safetensors", "Tags (SD1.5 / SDXL)"),
        ("sdxl", "sd_xl_base_1.0.safetensors", "Tags (SD1.5 / SDXL)"),
        ("sdxl", "ponyDiffusionV6XL.safetensors", "Danbooru tags (Pony)"),
        ("sdxl", "illustriousXL_v01.safetensors", "Danbooru tags (Illustrious / NoobAI)"),
        ("sd3", "sd3_medium_incl_clips.safetensors", "Natural language (Flux / SD3)"),
    ],
)
def test_auto_records_the_style_the_loaded_checkpoint_wants(runner, script, family, filename, label):
    from modules import shared

    shared.sd_model = shared.SdModel(family, filename)
    _, params = _run(runner, script, JobConfig.defaults())
    assert params["InterStable prompt style"] == label


@pytest.mark.parametrize(
    ("metadata", "label"),
    [
        ({"modelspec.title": "Pony Diffusion V6 XL"}, "Danbooru tags (Pony)"),
        ({"ss_sd_model_name": "illustriousXL_v01.safetensors"}, "Danbooru tags (Illustrious / NoobAI)"),
        ({"modelspec.title": "My photo merge", "modelspec.description": "not a pony model"}, "Tags (SD1.5 / SDXL)"),
        ({}, "Tags (SD1.5 / SDXL)"),
    ],
)
def test_auto_reads_a_renamed_checkpoints_metadata(runner, script, metadata, label):
    from modules import shared

    shared.sd_model = shared.SdModel("sdxl", "my_favourite_v3.safetensors", metadata)
    _, params = _run(runner, script, JobConfig.defaults())
    assert params["InterStable prompt style"] == label


def test_auto_reads_the_checkpoint_an_api_override_switches_to(runner, script, monkeypatch):
    """The host loads an ``override_settings`` checkpoint only inside ``process_images``, after the prompts."""
    from modules import sd_models, shared

    shared.sd_model = shared.SdModel("sdxl", "sd_xl_base_1.0.safetensors")
    renamed = shared.CheckpointInfo("my_favourite_v3.safetensors", {"modelspec.title": "Pony Diffusion V6 XL"})
    monkeypatch.setitem(sd_models.checkpoint_aliases, "my_favourite_v3", renamed)
    _, params = _run(runner, script, JobConfig.defaults(), override_settings={"sd_model_checkpoint": "my_favourite_v3"})
    assert params["InterStable prompt style"] == "Danbooru tags (Pony)"
    _, unknown = _run(runner, script, JobConfig.defaults(), override_settings={"sd_model_checkpoint": "no_such"})
    assert unknown["InterStable prompt style"] == "Tags (SD1.5 / SDXL)"  # the host drops an unknown one too


def test_a_chosen_style_wins_over_the_checkpoint(runner, script):
    from modules import shared

    shared.sd_model = shared.SdModel("sd3", "sd3_medium.safetensors")
    _, params = _run(runner, script, JobConfig.defaults().replace(prompt_style="Tags (SD1.5 / SDXL)"))
    assert params["InterStable prompt style"] == "Tags (SD1.5 / SDXL)"


def test_pony_prefix_leads_the_final_prompt_once(runner, script):
    processed, _ = _run(runner, script, JobConfig.defaults().replace(prompt_style="pony"), prompt="1girl, red hair")
    final = processed.infotexts[0].split("\n")[0]
    assert final.startswith(PONY_PREFIX + ", ")
    assert final.endswith("1girl, red hair")
    assert final.count("score_9") == 1
    processed, _ = _run(runner, script, JobConfig.defaults().replace(prompt_style="pony"), prompt="score_9, 1girl")
    assert processed.infotexts[0].split("\n")[0].count("score_9") == 1  # the user's own prefix is not doubled


def test_forge_flux_gets_natural_language_and_the_hosts_t5_budget(monkeypatch):
    from modules import shared

    from interstable.args import JobConfig as Config
    from interstable.webui import resources, settings

    class Flux:  # Forge's backend.diffusion_engine.flux.Flux as the WebUI sees it: every is_* flag false
        is_sd1 = is_sd2 = is_sdxl = is_sd3 = False
        text_processing_engine_t5 = object()

        def get_prompt_lengths_on_ui(self, prompt):
            return len(prompt.split()), max(255, len(prompt.split()))

    shared.sd_model = Flux()
    models = resources.prepare(Config.defaults().replace(llm_model="(none)"), settings.read())
    assert models.resources.auto_style == "natural"
    assert models.info.prompt_style == "natural"
    assert models.resources.budget == 255
    assert models.resources.count_tokens("a b c d") == 4


def test_default_model_is_the_first_instruct_model_and_a_base_model_is_warned_about(caplog):
    from interstable.args import JobConfig as Config
    from interstable.tinymodels.gguf_llama import write_tiny_llama
    from interstable.webui import resources, settings

    current = settings.read()
    write_tiny_llama(current.llm_dir / "aaa-base.gguf", template=None)  # alphabetically first, no chat template
    assert resources.resolve_llm(Config.defaults(), current)[0] == "tiny-mistral.gguf"
    with caplog.at_level("WARNING", logger="interstable"):
        models = resources.prepare(Config.defaults().replace(llm_model="aaa-base.gguf"), current)
    assert models.info.llm_name == "aaa-base.gguf"
    assert any("looks like a base model" in r.getMessage() for r in caplog.records)

"""What the prompt writer reads from the real A1111 besides the script's arguments: the loaded checkpoint's
safetensors metadata (A1111 reads it into ``CheckpointInfo.metadata``), which tells "Auto" that a renamed checkpoint is
a Pony model, and the language of the user's prompt, recorded in the infotext; with the real Qwen GGUF."""

from __future__ import annotations

import json
import shutil

import pytest
from realapi import script_args

from interstable.prompt import PONY_PREFIX

QWEN = "Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf"
RENAMED = "my_favourite_v3"
TINY = "interstable-tiny-sd1"
GERMAN = "<lora:none_such:0.5>, rote Katze auf dem Sofa"


@pytest.fixture(scope="module")
def renamed_pony(real_webui, api):
    """The tiny SD1 checkpoint again under a name that says nothing, its metadata calling it a Pony model."""
    from safetensors.torch import load_file, save_file

    if real_webui.spec.name != "a1111":  # Forge runs a full-size 2 GB checkpoint: a renamed copy is too big here
        pytest.skip("the renamed checkpoint is a copy of the tiny SD1, which only the A1111 tier has")

    folder = real_webui.data_dir / "models" / "Stable-diffusion"
    tiny = folder / f"{TINY}.safetensors"
    save_file(load_file(str(tiny)), str(folder / f"{RENAMED}.safetensors"), metadata={"modelspec.title": "Pony V6 XL"})
    shutil.copyfile(tiny.with_suffix(".yaml"), folder / f"{RENAMED}.yaml")  # the tiny model's own config
    assert api("POST", "/sdapi/v1/refresh-checkpoints").status_code == 200
    yield RENAMED
    api("POST", "/sdapi/v1/options", json={"sd_model_checkpoint": TINY})  # the other modules' checkpoint
    for suffix in (".safetensors", ".yaml"):
        (folder / f"{RENAMED}{suffix}").unlink()
    api("POST", "/sdapi/v1/refresh-checkpoints")


def _params(api, body: dict) -> dict:
    return api("POST", "/sdapi/v1/png-info", json={"image": body["images"][0]}).json()["parameters"]


def test_auto_reads_the_metadata_of_a_renamed_checkpoint_and_the_prompts_language_is_recorded(api, job, renamed_pony):
    override = {"sd_model_checkpoint": renamed_pony}  # for this job; the host restores its checkpoint afterwards
    args = script_args(caption_backend="None", llm_model=QWEN, max_tokens=48)
    body = job(seed=71, prompt=GERMAN, script_args=args, override_settings=override)
    params = _params(api, body)
    assert params["Model"] == renamed_pony
    assert params["InterStable prompt style"] == "Danbooru tags (Pony)"  # from the metadata: the name says nothing
    assert params["InterStable user language"] == "German"
    prompt = json.loads(body["info"])["prompt"]
    assert prompt.startswith(PONY_PREFIX + ", ")
    assert prompt.endswith(GERMAN)  # the user's prompt re-attached as written (the default)
    back = {"sd_model_checkpoint": TINY}  # a fresh data dir never saved a checkpoint, so nothing was restored
    plain = _params(api, job(seed=71, prompt="<lora:none_such:0.5>, red cat on a sofa", script_args=args,
                             override_settings=back))  # fmt: skip
    assert plain["Model"] == TINY
    assert plain["InterStable prompt style"] == "Tags (SD1.5 / SDXL)"  # the tiny SD1 itself: no hint
    assert "InterStable user language" not in plain

"""The server backend's HTTP behaviour against a scripted stand-in server on 127.0.0.1 (the network is the seam; the
same backend runs against a real ``llama_cpp.server`` in tests/real_models/test_llm_backends.py): retries with
backoff, clear errors naming the URL and the fix, the API key only in the header, the model chosen by name.
"""

from __future__ import annotations

import logging

import openai_standin
import pytest

from interstable.errors import ConfigError, JobInterrupted, ModelLoadError, ModelNotFoundError, PromptError
from interstable.llm.server import ServerPromptWriter, normalize_url, server_status
from interstable.prompt import PromptRequest, SamplingSettings

REQUEST = PromptRequest(caption="a red house")
KEY = "sk-very-secret-1234"


@pytest.fixture
def stand_in():
    with openai_standin.serve() as script:
        yield script


def test_urls_get_v1_and_bad_ones_are_clear_errors():
    assert normalize_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1"
    assert normalize_url(" http://h:1/v1/ ") == "http://h:1/v1"
    for bad in ("", "127.0.0.1:8080", "ftp://h/v1", "http://"):
        with pytest.raises(ConfigError, match=r"LLM server URL .*for example http://127\.0\.0\.1:8080/v1"):
            normalize_url(bad)


def test_the_model_seed_grammar_and_key_reach_the_server(stand_in):
    writer = ServerPromptWriter(stand_in.url, model="big", api_key=KEY)
    progress = []
    text = writer.write(REQUEST, seed=2**32 + 5, on_progress=lambda d, t: progress.append((d, t)))
    assert text == "red house, warm light"
    assert progress == [(1, 120), (2, 120), (3, 120)]
    body = stand_in.received[-1]["body"]
    assert body["model"] == "big"
    assert body["seed"] == (2**32 + 5) % 0xFFFFFFFF
    assert body["grammar"].startswith("root ::=")
    assert body["stream"] is True
    assert {r["auth"] for r in stand_in.received} == {f"Bearer {KEY}"}
    assert KEY not in repr(writer)


def test_the_first_model_or_the_preferred_one_and_a_missing_one(stand_in):
    assert ServerPromptWriter(stand_in.url).model_name == "smol"
    assert ServerPromptWriter(stand_in.url, preferred="big").model_name == "big"
    assert ServerPromptWriter(stand_in.url, preferred="nope").model_name == "smol"
    with pytest.raises(ModelNotFoundError, match=r"has no model 'nope'; it lists 'smol', 'big'"):
        ServerPromptWriter(stand_in.url, model="nope").write(REQUEST, seed=1)


def test_a_busy_server_is_retried_with_backoff(stand_in, caplog):
    stand_in.statuses = [503, 429]
    writer = ServerPromptWriter(stand_in.url, api_key=KEY, retries=2, backoff=0.01)
    with caplog.at_level(logging.WARNING, logger="interstable"):
        assert writer.write(REQUEST, seed=1) == "red house, warm light"
    assert len([r for r in stand_in.received if r["path"] == "/v1/chat/completions"]) == 3
    assert "retrying in 0.0 s" in caplog.text
    assert KEY not in caplog.text


def test_too_many_failures_and_refused_keys_are_clear_errors(stand_in, caplog):
    stand_in.statuses = [500, 500]
    with pytest.raises(ModelLoadError, match=r"/v1/chat/completions answered HTTP 500: busy \(500\)"):
        ServerPromptWriter(stand_in.url, retries=1, backoff=0.01).write(REQUEST, seed=1)
    stand_in.statuses = [401]
    with caplog.at_level(logging.DEBUG), pytest.raises(ModelLoadError, match=r"refused the request .*API key") as e:
        ServerPromptWriter(stand_in.url, api_key=KEY).write(REQUEST, seed=1)
    assert KEY not in str(e.value)
    assert KEY not in caplog.text


def test_an_unreachable_server_names_the_url_and_the_fix():
    with pytest.raises(ModelLoadError) as caught:
        ServerPromptWriter("http://127.0.0.1:9/v1", retries=1, backoff=0.01).write(REQUEST, seed=1)
    message = str(caught.value)
    assert "http://127.0.0.1:9/v1/models cannot be reached" in message
    assert "2 tries" in message
    assert "LLM server URL" in message
    status = server_status("http://127.0.0.1:9")
    assert status["reachable"] is False
    assert "cannot be reached" in status["error"]


def test_empty_output_and_interrupts(stand_in):
    stand_in.pieces = [" ", ","]
    with pytest.raises(PromptError, match="returned no usable text"):
        ServerPromptWriter(stand_in.url).write(REQUEST, seed=1)
    stand_in.pieces = ["a", "b", "c"]
    with pytest.raises(JobInterrupted, match="after 1 tokens"):
        ServerPromptWriter(stand_in.url).write(REQUEST, seed=1, should_stop=iter([False, True, True]).__next__)
    with pytest.raises(JobInterrupted, match="before it started"):
        ServerPromptWriter(stand_in.url).write(REQUEST, seed=1, should_stop=lambda: True)


def test_bad_arguments_are_clear_errors(stand_in):
    with pytest.raises(ConfigError, match="LLM server timeout"):
        ServerPromptWriter(stand_in.url, timeout=0)
    with pytest.raises(ConfigError, match="seed"):
        ServerPromptWriter(stand_in.url).write(REQUEST, seed="1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="sampling"):
        ServerPromptWriter(stand_in.url).write(REQUEST, seed=1, sampling={})  # type: ignore[arg-type]
    assert stand_in.received == []  # nothing was sent for bad arguments
    assert ServerPromptWriter(stand_in.url).write(REQUEST, seed=1, sampling=SamplingSettings(max_tokens=16))


def test_the_style_sets_the_instructions_the_grammar_and_the_cleaning(stand_in):
    from interstable.prompt import build_messages, grammar_for

    natural = PromptRequest(caption="a red house", style="natural")
    stand_in.pieces = ["A red house stands in warm light.", " Ivy climbs its old walls."]
    text = ServerPromptWriter(stand_in.url).write(natural, seed=1)
    assert text == "A red house stands in warm light. Ivy climbs its old walls."  # sentences, not comma phrases
    body = stand_in.received[-1]["body"]
    assert body["grammar"] == grammar_for("", "natural")
    instructions, message = build_messages(natural, style="natural")
    assert [(m["role"], m["content"]) for m in body["messages"]] == [("system", instructions), ("user", message)]


def test_server_answers_are_filtered_as_local_ones_are(stand_in):
    request = PromptRequest(caption="a red house", user_prompt="oil painting", lines="9 straight lines in black")
    stand_in.pieces = ["red house, 9 straight lines in black, oil painting, I will add more color, warm light"]
    assert ServerPromptWriter(stand_in.url).write(request, seed=1) == "red house, warm light"
    stand_in.pieces = ["I cannot help with that."]
    with pytest.raises(PromptError, match=r"refused|repeated the instructions"):
        ServerPromptWriter(stand_in.url).write(request, seed=1)

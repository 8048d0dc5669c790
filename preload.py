"""Command-line flags of InterStable; the WebUI calls ``preload(parser)`` before parsing its arguments.

Read them as ``shared.cmd_opts.interstable_llm_dir``, ``shared.cmd_opts.interstable_gpu_layers`` and
``shared.cmd_opts.interstable_llm_url``; they win over the Settings page.
"""


def preload(parser):
    parser.add_argument(
        "--interstable-llm-dir",
        type=str,
        default=None,
        help="InterStable: folder with the LLM .gguf files (default: models/LLM under the WebUI folder)",
    )
    parser.add_argument(
        "--interstable-gpu-layers",
        type=str,
        default=None,
        help="InterStable: LLM layers on the GPU: auto, 0 (CPU only), -1 (all) or a number",
    )
    parser.add_argument(
        "--interstable-llm-url",
        type=str,
        default=None,
        help="InterStable: the OpenAI-compatible LLM server's URL, e.g. http://127.0.0.1:8080/v1 (used with the "
        "LLM backend 'OpenAI-compatible server')",
    )

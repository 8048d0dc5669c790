"""Command-line flags of InterStable; the WebUI calls ``preload(parser)`` before parsing its arguments.

Read them as ``shared.cmd_opts.interstable_llm_dir`` and ``shared.cmd_opts.interstable_gpu_layers``; they win over
the Settings page.
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

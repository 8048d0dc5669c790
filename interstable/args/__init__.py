"""The ordered table of script arguments: the single source for the UI, ``script_args``, infotext and README.

The order of :data:`ARGS` is the order of the controls ``ui()`` returns, hence the order of the API's
``script_args``. Appending is safe for API clients; reordering or removing entries breaks them (public contract).

Values are parsed strictly: numbers must be finite and in range, choices are matched by id, label (both
case-insensitive) or index, ``None`` means "the default", a short list is filled with defaults and a long one is
refused. Every error is a :class:`~interstable.errors.ConfigError` naming the position, the label, the value and
what is allowed.

Where it lives: the table and the parsing of one value in :mod:`interstable.args.table`, :class:`JobConfig` and the
conversions (``script_args``, infotext) in :mod:`interstable.args.config`, the README table and the tooltips in
:mod:`interstable.args.docs`. Their public names are re-exported here.
"""

from interstable.args.config import (
    JobConfig,
    from_infotext,
    from_script_args,
    infotext_text,
    to_infotext,
    to_script_args,
)
from interstable.args.docs import BUTTON_TIPS, markdown_table, tooltips_js
from interstable.args.table import (
    ARGS,
    ARGS_BY_KEY,
    BASE_MARK,
    DEFAULT_MODEL_LABEL,
    NO_MODEL,
    TEXT_MAX_CHARS,
    Arg,
    Choice,
    parse_value,
)

__all__ = [
    "ARGS",
    "ARGS_BY_KEY",
    "BASE_MARK",
    "BUTTON_TIPS",
    "DEFAULT_MODEL_LABEL",
    "NO_MODEL",
    "TEXT_MAX_CHARS",
    "Arg",
    "Choice",
    "JobConfig",
    "from_infotext",
    "from_script_args",
    "infotext_text",
    "markdown_table",
    "parse_value",
    "to_infotext",
    "to_script_args",
    "tooltips_js",
]

"""`--help` that reads like the README: on/off flags shown without a value type, required
arguments in usage lines by their bare name (`ibfp track [OPTIONS] VIDEO`).

Typer from 0.2x renders help itself (no Click underneath) and shows every option's type,
so a flag such as `--version` reads `--version <bool>` as if it took a value, and it wraps
required arguments in braces (`{VIDEO}`). `apply()` adjusts those two renderings on Typer's
parameter classes; on a Typer without them (older versions render help through Click, which
does neither) it changes nothing.
"""

from __future__ import annotations

from typing import Any

from typer import core


def apply() -> None:
    """Make flags show no value type and required arguments show their bare name in usage."""
    option, argument = getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)
    if option is None or argument is None:
        return
    if hasattr(option, "display_type_rich"):
        value_type = option.display_type_rich

        def display_type_rich(self: Any, ctx: Any) -> str | None:
            return None if self.is_flag else value_type(self, ctx)

        option.display_type_rich = display_type_rich
    if hasattr(argument, "_usage_display_name") and hasattr(argument, "display_name_raw"):

        def usage_name(self: Any) -> str:
            name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
            return name if self.nargs == 1 else f"{name}..."

        argument._usage_display_name = usage_name

"""What the commands that read prompts from files check (`deja eval --pairs`, `deja replay`,
`deja fake-llm --answers`), so that a file no prompt can come from is a message naming its line,
never a traceback: JSON nested past what a decoder can hold, and text the service cannot take
as a prompt."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from app.cache.scope import normalise_prompt

T = TypeVar("T")


def decode_json(text: str | bytes, type: type[T] | Any = Any) -> T:
    """`text` decoded as `type`; ValueError saying why not (malformed, the wrong shape, or nested
    so deep that decoding it would exhaust the stack)."""
    try:
        return msgspec.json.decode(text, type=type)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None


def prompt_problem(text: str) -> str | None:
    """Why `text` cannot be a prompt the service stores or looks up, or None."""
    if "\x00" in text:
        return "holds a NUL character, which no prompt may"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (no character UTF-8 can write)"
    if not normalise_prompt(text):
        return "has nothing to look up (blank, or characters that do not count)"
    return None

"""Transcription options as flags, where the commands connect, and the ``options`` command.

Every flag's help is its field's description, and which fields a command offers follows from the
mode it runs in (:func:`~speechmatics_modes._config.fields_missing_in`), so neither the texts
nor the mode rules are written twice.
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from speechmatics_modes._cli._console import say
from speechmatics_modes._cli._exits import EXIT_OK, UsageError
from speechmatics_modes._config import BatchOptions, TranscriptionOptions, fields_missing_in
from speechmatics_modes._settings import Settings

__all__ = [
    "LOCAL_HELP",
    "Commands",
    "add_options_command",
    "add_transcription_flags",
    "settings_for_cli",
    "transcription_options",
]

Commands = Any  # argparse's _SubParsersAction is private
LOCAL_HELP = "Use the embedded offline server even when an API key is set."


def add_transcription_flags(
    parser: argparse.ArgumentParser,
    mode: Literal["batch", "realtime"],
    *,
    fixed: frozenset[str] = frozenset(),
) -> None:
    """One ``--option`` per scalar option ``mode`` has, its help being the field's description.

    Args:
        parser: The command's parser.
        mode: The mode the command transcribes in by default; fields it lacks get no flag.
        fixed: Fields the command sets itself (``listen`` always asks for partials).
    """
    group = parser.add_argument_group("transcription options")
    skip = fields_missing_in(mode) | fixed
    for name, field in TranscriptionOptions.model_fields.items():
        kind = _scalar_kind(field.annotation)
        if name in skip or kind is None:
            continue
        flag = "--" + name.replace("_", "-")
        help_text = (field.description or "").replace("%", "%%")
        if kind is bool:
            group.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, help=help_text
            )
        elif isinstance(kind, tuple):
            group.add_argument(flag, dest=name, choices=kind, help=help_text)
        else:
            group.add_argument(flag, dest=name, type=kind, help=help_text)


def _scalar_kind(annotation: Any) -> type | tuple[str, ...] | None:
    """``str``, ``float``, ``bool``, a ``Literal``'s choices, or ``None`` for anything else."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) != 1:
            return None
        annotation = members[0]
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(choice) for choice in typing.get_args(annotation))
    return annotation if annotation in (str, int, float, bool) else None


def transcription_options(args: argparse.Namespace, **fixed: Any) -> TranscriptionOptions:
    """The options the flags ask for, plus ``fixed``; a bad value is a usage error."""
    given = {
        name: getattr(args, name)
        for name in TranscriptionOptions.model_fields
        if getattr(args, name, None) is not None
    }
    try:
        return TranscriptionOptions(**{**given, **fixed})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "options"
        raise UsageError(f"{where}: {first['msg']}") from exc


def settings_for_cli(args: argparse.Namespace) -> Settings:
    """The user's settings; the embedded server with ``--local``, or when there is no key."""
    settings = Settings()
    if getattr(args, "local", False):
        return Settings(backend="local")
    if settings.api_key is None and settings.backend == "cloud":
        say(args, "no SPEECHMATICS_API_KEY: using the embedded offline server (lower accuracy)")
        return Settings(backend="local")
    return settings


def add_options_command(commands: Commands, common: argparse.ArgumentParser) -> None:
    """``options``: every transcription and batch option, with its description."""
    command = commands.add_parser(
        "options",
        parents=[common],
        help="List every transcription option, what it does and where it applies.",
    )
    command.set_defaults(handler=_show_options)


def _show_options(args: argparse.Namespace) -> int:
    del args
    for title, model in (
        ("Transcription options (TranscriptionOptions)", TranscriptionOptions),
        ("Batch job options (BatchOptions)", BatchOptions),
    ):
        print(title)
        _print_fields(model)
        print()
    return EXIT_OK


def _print_fields(model: type[BaseModel]) -> None:
    width = max(len(name) for name in model.model_fields)
    for name, field in model.model_fields.items():
        print(f"  {name:<{width}}  {field.description}")

"""``simclr <command>``: thin argparse -> config -> call.

Commands, by module: ``pretrain``, ``presets`` (``cli.pretrain``); ``linear-eval``, ``knn``
(``cli.evaluate``); ``finetune``, ``distill`` (``cli.classify``); ``embed``, ``search``, ``export``
(``cli.use``); ``preview-augment``, ``plot``, ``visualize`` (``cli.pictures``). Errors the user can fix are
printed as one ``error: ...`` line with
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import warnings
from collections.abc import Callable

from simclr import distributed
from simclr.cli import classify, data, evaluate, pictures, pretrain, use
from simclr.errors import SimCLRError

COMMAND_GROUPS = (pretrain, evaluate, classify, use, pictures, data)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    """The parser of every command, and each command's function."""
    parser = argparse.ArgumentParser(prog="simclr", description="SimCLR pretraining and evaluation.")
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {}
    for group in COMMAND_GROUPS:
        commands.update(group.add_commands(sub))
    parser.set_defaults(_subparsers=sub.choices)
    return parser, commands


def unknown_flags_message(extras: list[str], command: argparse.ArgumentParser) -> str:
    """argparse's "unrecognized arguments" line, with the closest flag of ``command`` for each misspelt one
    (``--data_dir``: did you mean --data-dir?)."""
    flags = [s for action in command._actions for s in action.option_strings]  # noqa: SLF001 - argparse has no API
    hints = []
    for word in extras:
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            close = difflib.get_close_matches(name.replace("_", "-"), flags, n=1, cutoff=0.6)
            if close:
                hints.append(f"{name}: did you mean {close[0]}?")
    return f"unrecognized arguments: {' '.join(extras)}" + (f" ({'; '.join(hints)})" if hints else "")


def _warning_line(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202, ARG001
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        command = args._subparsers[args.command]
        command.error(unknown_flags_message(extras, command))
    warnings.formatwarning = _warning_line  # one plain line per warning
    try:
        return commands[args.command](args)
    except OSError as e:  # a file the command needed to read or write: one line, no traceback
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except SimCLRError as e:
        if distributed.reports(e):  # an error every rank raised alike is printed once
            world = distributed.context()
            rank = world.rank if world.enabled else distributed.env_rank()
            print(f"error: {e}" if rank == 0 or getattr(e, "on_every_rank", False) else f"error (rank {rank}): {e}",
                  file=sys.stderr)
        return 2
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())

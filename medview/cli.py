"""`medview` command: the GUI by default, headless sub-commands otherwise.

Each sub-command lives beside the code it drives (``medview/<area>/commands.py`` exposes
``register(subparsers)``); this module only wires them up, and imports nothing heavy so that
``medview --version`` and the GUI start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from medview import __version__

# area modules that contribute sub-commands; a missing one is skipped (not all areas exist yet)
_COMMAND_MODULES = (
    "medview.io.commands",  # info
    "medview.inference.commands",  # infer, models
    "medview.training.commands",  # train, evaluate
    "medview.annotation.commands",  # export-seg, import-seg
    "medview.pacs.commands",  # pacs echo/find/get/send/sources
    "medview.campaign.commands",  # rank (batch inference itself is `infer` on a folder)
    "medview.reporting.commands",  # deidentify, export-sr, export-rtstruct, report, audit ...
    "medview.selftest",  # self-test
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medview",
        description="MedView AI review workstation (research use only, not for diagnosis).",
    )
    parser.add_argument("--version", action="version", version=f"MedView {__version__}")
    parser.add_argument("--device", default=None, help="inference device: auto, cpu, cuda, cuda:N, mps")
    sub = parser.add_subparsers(dest="command")
    gui = sub.add_parser("view", help="open the viewer (default when no sub-command is given)")
    gui.add_argument("path", nargs="?", help="DICOM folder/file, DICOMDIR, NIfTI/NRRD/MHA or image")
    gui.add_argument("--device", dest="view_device", default=None, help=argparse.SUPPRESS)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def _plain_gui_args(argv: list[str]) -> tuple[str | None, str | None] | None:
    """``(device, path)`` when ``argv`` can only mean the GUI: nothing, ``--device D``/``--device=D``
    and at most one PATH that exists and cannot be a sub-command name (it holds a path separator or
    a dot). None otherwise: the full parser (every area's sub-commands) decides."""
    import os

    device, rest, i = None, [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--device" and i + 1 < len(argv):
            device, i = argv[i + 1], i + 2
            continue
        if a.startswith("--device="):
            device = a.split("=", 1)[1]
        elif a.startswith("-"):
            return None
        else:
            rest.append(a)
        i += 1
    if not rest:
        return device, None
    path = rest[0]
    if len(rest) == 1 and (os.sep in path or "." in path) and os.path.exists(path):
        return device, path
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--self-test" in argv:  # the frozen app's top-level flag = the `self-test` sub-command
        argv = ["self-test", *[a for a in argv if a != "--self-test"]]
    gui = _plain_gui_args(argv)
    if gui is not None:
        from medview.ui.app import pause_gc_until_first_paint

        pause_gc_until_first_paint()  # start-up allocates ~1M objects: no cyclic GC passes over them
    from medview.app_logging import setup_logging

    setup_logging()  # rotating log file in the user log folder (cheap: no Qt, no torch)
    if gui is not None:  # `medview [--device D] [PATH]`: no area's sub-commands imported (start-up)
        from medview.ui.app import run_app

        return run_app(gui[1], device=gui[0])
    parser = build_parser()
    known = {a for a in parser._subparsers._group_actions[0].choices}  # type: ignore[union-attr]
    # `medview PATH` and plain `medview` open the GUI
    first_positional = next((a for a in argv if not a.startswith("-")), None)
    wants_help = any(a in ("--version", "-h", "--help") for a in argv)
    if not wants_help and (first_positional is None or first_positional not in known):
        argv = ["view", *argv]
    args = parser.parse_args(argv)
    if args.command in (None, "view"):
        from medview.ui.app import run_app

        return run_app(getattr(args, "path", None), device=getattr(args, "view_device", None) or args.device)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `medview info X | head -1`: the reader left; stop quietly
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())

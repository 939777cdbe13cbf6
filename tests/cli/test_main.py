"""The `fullduplex` command itself: its help, its version, `python -m fullduplex`."""

from __future__ import annotations

import argparse
import subprocess

import pytest

from fullduplex.cli import build_parser, main

from .support import CLI


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=20)


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("connect URL", "serve", "bench URL"):
        assert command in result.stdout


def test_no_command_prints_the_help_and_exits_2() -> None:
    result = run()
    assert result.returncode == 2
    assert "commands:" in result.stderr


def test_version_is_the_package_version() -> None:
    from importlib.metadata import version

    assert run("--version").stdout.strip() == f"fullduplex {version('fullduplex')}"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_of_every_command_is_described(name: str) -> None:
    parser = subcommands()[name]
    help_text = run(name, "--help").stdout
    assert parser.description and parser.description.splitlines()[0] in help_text
    assert "examples:" in help_text and "exit status" in help_text
    for action in parser._actions:
        assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
        for option in action.option_strings:
            assert option in help_text, option


def test_main_returns_the_exit_status_instead_of_exiting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["connect", "ws://127.0.0.1:1/", "--cacert", "x.pem"]) == 2
    assert capsys.readouterr().err == (
        "fullduplex connect: --cacert and --insecure need a wss:// URL\n"
    )

"""Fixtures of the reliability tests: a temporary home, and knobd processes on it that are cleaned up."""
import os
import shutil
import tempfile

import pytest

from knobd_process import Knobd


@pytest.fixture
def knobd_home():
    home = tempfile.mkdtemp(prefix="knob-reliability-")
    os.chmod(home, 0o700)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def spawn_knobd(knobd_home):
    """Makes Knobd objects on a temporary home; kills whatever is left of them at the end."""
    made = []

    def make(arguments=()):
        daemon = Knobd(knobd_home, arguments)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.kill()
        daemon.kill_leftovers()


def pytest_terminal_summary(terminalreporter):
    from knobd_process import SUMMARY
    for line in SUMMARY:
        terminalreporter.write_line(line)

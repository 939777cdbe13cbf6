"""Run the SockJS protocol suite's two modules against URL; for scripts/sockjs-suite/run.sh.

Usage: run_suite.py URL SUITE_DIR. A line per test on stdout, then "N passed, N failed";
unittest's own report on stderr. Exits 0 only when every test passed.
"""

import importlib.util
import os
import sys
import unittest
from typing import Any

import websocket

MODULES = ("sockjs-protocol.py", "http-quirks.py")


class Outcomes(unittest.TextTestResult):
    """Prints each test's outcome as it ends."""

    def report(self, outcome: str, test: unittest.TestCase) -> None:
        print(outcome.ljust(7), ".".join(test.id().split(".")[-2:]), flush=True)

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self.report("PASSED", test)

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self.report("FAILED", test)

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self.report("ERROR", test)


def main() -> int:
    url, suite_dir = sys.argv[1:]
    # The suite reads its server from SOCKJS_URL, and its modules import each other.
    os.environ["SOCKJS_URL"] = url
    sys.path.insert(0, suite_dir)
    # websocket-client waits forever by default: bound each of its reads.
    websocket.setdefaulttimeout(5)
    tests = unittest.TestSuite()
    for file in MODULES:
        spec = importlib.util.spec_from_file_location(file[:-3], os.path.join(suite_dir, file))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        tests.addTests(unittest.defaultTestLoader.loadTestsFromModule(module))
    result = unittest.TextTestRunner(resultclass=Outcomes, verbosity=0).run(tests)
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed - len(result.skipped)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

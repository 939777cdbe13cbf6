"use strict";
// A mocha reporter for scripts/socketio-suites/run.sh: a line per test on stdout, and the
// results as JSON in the file RESULTS_JSON names. It uses only the runner's events, so it
// loads from outside the suites' node_modules.
const fs = require("fs");

class Reporter {
  constructor(runner) {
    const tests = [];
    const started = Date.now();
    const record = (test, state, error) => {
      tests.push({ title: test.fullTitle(), state, duration_ms: test.duration ?? null, error });
      const detail = error ? `: ${error}` : "";
      console.log(`${state.toUpperCase().padEnd(7)} ${test.fullTitle()}${detail}`);
    };
    runner.on("pass", (test) => record(test, "passed"));
    runner.on("fail", (test, error) =>
      record(test, "failed", String((error && error.message) || error).split("\n")[0]),
    );
    runner.on("pending", (test) => record(test, "skipped"));
    runner.once("end", () => {
      const count = (state) => tests.filter((test) => test.state === state).length;
      const results = {
        url: process.env.SERVER_URL,
        wall_ms: Date.now() - started,
        passed: count("passed"),
        failed: count("failed"),
        skipped: count("skipped"),
        tests,
      };
      fs.writeFileSync(process.env.RESULTS_JSON, JSON.stringify(results, null, 2) + "\n");
    });
  }
}

module.exports = Reporter;

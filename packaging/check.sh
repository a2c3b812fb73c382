#!/usr/bin/env bash
# Build MedView from a clean checkout and run the frozen self-test. Exit 0 only when the build
# succeeded, `medview --version` works and `medview --self-test` passed.
#
#   packaging/check.sh [--python PATH] [--rev REV] [--keep] [--allow-no-models]
#
# --python  interpreter of an environment with MedView's dependencies (default: this checkout's
#           .venv, as made by scripts/setup.sh); PyInstaller is pip-installed into it if missing.
# --rev     what to build (default HEAD): committed files only, as `git clone` gives them.
# --keep    keep the temporary folder (clone, build, self-test exports) and print its path.
# --allow-no-models  a build without model packages passes (models/ not committed yet).
#
# The frozen app runs from outside the clone with no display, no PYTHONPATH and a fresh
# MEDVIEW_HOME, so it can use nothing but what the build bundled.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
PY="" REV=HEAD KEEP=0 SELFTEST_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PY="$2"; shift 2 ;;
    --rev) REV="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --allow-no-models) SELFTEST_ARGS+=(--allow-no-models); shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [ -z "$PY" ]; then
  if [ -x "$root/.venv/bin/python" ]; then PY="$root/.venv/bin/python"; elif [ -x "$root/.venv/Scripts/python.exe" ]; then PY="$root/.venv/Scripts/python.exe"; else PY="$(command -v python3)"; fi
fi
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
work="$(mktemp -d "${TMPDIR:-/tmp}/medview-check.XXXXXX")"
cleanup() { if [ $KEEP = 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
t0=$(date +%s)

echo "== clean checkout of $(git -C "$root" rev-parse --short "$REV") into $work/src"
git clone --quiet --no-hardlinks "$root" "$work/src"
git -C "$work/src" checkout --quiet --detach "$(git -C "$root" rev-parse "$REV")"

echo "== build (python: $PY)"
"$work/src/packaging/build.sh" --python "$PY" 2>&1 | tee "$work/build.log" | grep -E "^(building with|build time|build size)|ERROR|Error" || true
[ "${PIPESTATUS[0]}" = 0 ] || { echo "BUILD FAILED (log: $work/build.log)"; KEEP=1; exit 1; }
app="$work/src/dist/medview"
exe="$app/medview"; [ -x "$app/medview-cli" ] && exe="$app/medview-cli"; [ -x "$exe" ] || exe="$exe.exe"
[ -x "$exe" ] || { echo "no executable in $app"; KEEP=1; exit 1; }

run_frozen() {  # no display, no source tree, no user settings
  (cd "$work" && env -u DISPLAY -u WAYLAND_DISPLAY -u PYTHONPATH -u PYTHONHOME -u MEDVIEW_MODELS \
     -u QT_QPA_PLATFORM -u MEDVIEW_DEVICE MEDVIEW_HOME="$work/home" "$exe" "$@")
}

echo "== $exe --version"
run_frozen --version
echo "== $exe --self-test"
t1=$(date +%s)
set +e
run_frozen --self-test --out "$work/selftest" --json "$work/selftest.json" "${SELFTEST_ARGS[@]}" 2>&1 | tee "$work/selftest.log"
rc=${PIPESTATUS[0]}
set -e
t2=$(date +%s)
echo "== frozen self-test exit code $rc ($((t2 - t1)) s wall, including start-up)"
if [ $rc = 0 ] && command -v xvfb-run >/dev/null; then  # the desktop platform plugin too (X11 on Xvfb)
  echo "== $exe --self-test on X11 (xvfb-run, QT_QPA_PLATFORM=xcb)"
  set +e
  (cd "$work" && env -u WAYLAND_DISPLAY -u PYTHONPATH -u MEDVIEW_MODELS MEDVIEW_HOME="$work/home" \
     QT_QPA_PLATFORM=xcb xvfb-run -a "$exe" --self-test "${SELFTEST_ARGS[@]}" > "$work/selftest-xcb.log" 2>&1)
  rc=$?
  set -e
  grep -E "^(main window shown|sample shown)|SELF-TEST" "$work/selftest-xcb.log" || tail -20 "$work/selftest-xcb.log"
fi
if [ $rc = 0 ]; then  # campaign batch in the frozen app: Dask worker processes need freeze_support
  echo "== $exe infer --workers 2 (frozen Dask batch on 6 synthetic images, then --resume)"
  mkdir -p "$work/batch-in"
  "$PY" -c "import sys, numpy as np; from PIL import Image
r = np.random.default_rng(0)
[Image.fromarray(r.integers(0, 255, (128, 128), dtype=np.uint8)).save(f'{sys.argv[1]}/case{i}.png') for i in range(6)]" "$work/batch-in"
  count() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))" "$work/batch-out/batch.json" "$1" 2>/dev/null || echo 0; }
  set +e
  run_frozen infer --model breast-us "$work/batch-in" --out "$work/batch-out" --workers 2 --unverified-ok \
    > "$work/batch.log" 2>&1
  brc=$?; ok_cases=$(count ok)
  run_frozen infer --model breast-us "$work/batch-in" --out "$work/batch-out" --workers 2 --unverified-ok --resume \
    > "$work/batch-resume.log" 2>&1
  rrc=$?; skipped_cases=$(count skipped)
  set -e
  tail -2 "$work/batch.log"; tail -2 "$work/batch-resume.log"
  echo "== frozen batch: exit $brc, $ok_cases of 6 cases ok; --resume: exit $rrc, $skipped_cases of 6 skipped"
  [ $brc = 0 ] && [ $rrc = 0 ] && [ "$ok_cases" = 6 ] && [ "$skipped_cases" = 6 ] || { rc=1; echo "frozen batch failed (logs: $work/batch*.log)"; }
fi
echo "== check.sh total $((t2 - t0)) s; app folder $(du -sh "$app" | cut -f1) ($(du -sm "$app" | cut -f1) MiB)"
[ $rc = 0 ] || { KEEP=1; echo "CHECK FAILED"; exit 1; }
echo "CHECK PASSED"

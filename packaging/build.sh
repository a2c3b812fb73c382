#!/usr/bin/env bash
# Build the one-folder MedView app with PyInstaller: dist/medview/ (Linux, macOS; Git Bash on Windows).
#   packaging/build.sh [--python PATH]      default: .venv/bin/python (Scripts/python.exe on Windows)
# Runs under `nice` (the build machine is shared). Prints the build time and the folder size.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PY="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; elif [ -x .venv/Scripts/python.exe ]; then PY=.venv/Scripts/python.exe; else PY=python3; fi
fi
"$PY" -c "import PyInstaller" 2>/dev/null || "$PY" -m pip install -q "pyinstaller>=6.5"
"$PY" -c "import torch; print('building with torch', torch.__version__, '(CUDA ' + str(torch.version.cuda) + ')' if torch.version.cuda else '(CPU-only build)')"
NICE=""; command -v nice >/dev/null && NICE="nice -n 10"
start=$(date +%s)
$NICE "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/medview.spec
end=$(date +%s)
echo "build time: $((end - start)) s"
if command -v du >/dev/null; then echo "build size: $(du -sh dist/medview | cut -f1) ($(du -sm dist/medview | cut -f1) MiB) in dist/medview"; fi

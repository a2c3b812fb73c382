#!/usr/bin/env bash
# Install a built dist/medview/ for one user (default) or system-wide (--system, as root):
# the app folder, a `medview` command on PATH, the icon in the hicolor theme and the .desktop file.
#   packaging/install-linux.sh [--system] [DIST_DIR]        DIST_DIR default: dist/medview
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
system=0
if [ "${1:-}" = "--system" ]; then system=1; shift; fi
dist="${1:-$here/../dist/medview}"
[ -x "$dist/medview" ] || { echo "no built app at $dist (run packaging/build.sh first)" >&2; exit 1; }
if [ $system = 1 ]; then
  app=/opt/medview; bin=/usr/local/bin; share=/usr/local/share
else
  app="$HOME/.local/lib/medview"; bin="$HOME/.local/bin"; share="${XDG_DATA_HOME:-$HOME/.local/share}"
fi
mkdir -p "$app" "$bin" "$share/applications"
rm -rf "$app.new" && cp -a "$dist" "$app.new" && rm -rf "$app" && mv "$app.new" "$app"
ln -sf "$app/medview" "$bin/medview"
icons="$app/_internal/resources/icons"
for s in 16 24 32 48 64 128 256 512; do
  mkdir -p "$share/icons/hicolor/${s}x${s}/apps"
  cp "$icons/medview-$s.png" "$share/icons/hicolor/${s}x${s}/apps/medview.png"
done
mkdir -p "$share/icons/hicolor/scalable/apps" && cp "$icons/medview.svg" "$share/icons/hicolor/scalable/apps/medview.svg"
sed -e "s#^Exec=medview#Exec=$app/medview#" -e "s#^TryExec=medview#TryExec=$app/medview#" \
  "$here/medview.desktop" > "$share/applications/medview.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$share/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q "$share/icons/hicolor" || true
echo "installed $app; command: $bin/medview; menu entry: $share/applications/medview.desktop"

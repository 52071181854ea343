#!/bin/sh
# Put vitgallery in the desktop's menu and in "Open with" for images, for an install whose share/
# folder desktops do not search: pipx, a virtual environment, setup.sh's editable .venv, or the
# unpacked bundle (which carries this script beside its binary). Writes only under
# ${XDG_DATA_HOME:-~/.local/share}.
#
#   install-desktop-entry.sh [PATH/TO/vitgallery]     # default: the bundle beside this script, else
#                                                     # the vitgallery on PATH
#   install-desktop-entry.sh --uninstall
set -eu

APP_ID=io.github.vitgallery.vitgallery
data=${XDG_DATA_HOME:-$HOME/.local/share}
icon_sizes="16x16 22x22 24x24 32x32 48x48 64x64 128x128 256x256 512x512"

refresh() {
    # Desktops notice new entries by themselves; these only speed it up where the tools exist.
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$data/applications" 2>/dev/null || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$data/icons/hicolor/index.theme" ]; then
        gtk-update-icon-cache -q -t "$data/icons/hicolor" 2>/dev/null || true
    fi
}

if [ "${1:-}" = "--uninstall" ]; then
    if [ ! -e "$data/applications/$APP_ID.desktop" ]; then
        echo "no desktop entry of vitgallery in $data: nothing to remove"
        exit 0
    fi
    rm -f "$data/applications/$APP_ID.desktop" "$data/metainfo/$APP_ID.metainfo.xml" \
        "$data/icons/hicolor/scalable/apps/vitgallery.svg"
    for size in $icon_sizes; do
        rm -f "$data/icons/hicolor/$size/apps/vitgallery.png"
    done
    refresh
    echo "removed vitgallery's desktop entry from $data"
    exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then
    executable=$1
elif [ -x "$here/vitgallery" ] && [ -d "$here/_internal" ]; then
    executable=$here/vitgallery
else
    executable=$(command -v vitgallery || true)
fi
if [ -z "$executable" ] || [ ! -x "$executable" ]; then
    echo "error: no vitgallery found; pass its path: $0 PATH/TO/vitgallery" >&2
    exit 2
fi
case $executable in
    /*) ;;
    *) executable=$(cd "$(dirname "$executable")" && pwd)/$(basename "$executable") ;;
esac

# The share/ folder that came with it: <prefix>/bin/vitgallery for a venv or pipx (whose ~/.local/bin
# entry links there), <bundle>/_internal/share for the bundle. An editable install (setup.sh's .venv)
# has none: the checkout's resources/ this script sits beside hold the same files, laid out flat.
real=$(readlink -f "$executable")
share=
for candidate in "$(dirname "$(dirname "$real")")/share" "$(dirname "$real")/_internal/share"; do
    if [ -f "$candidate/applications/$APP_ID.desktop" ]; then
        share=$candidate
        break
    fi
done
if [ -n "$share" ]; then
    desktop_file=$share/applications/$APP_ID.desktop
    metainfo_file=$share/metainfo/$APP_ID.metainfo.xml
    svg_file=$share/icons/hicolor/scalable/apps/vitgallery.svg
    png_folder=$share/icons/hicolor  # then SIZE/apps/vitgallery.png
    png_in=apps/
elif [ -f "$here/../resources/$APP_ID.desktop" ]; then
    resources=$(cd "$here/../resources" && pwd)
    desktop_file=$resources/$APP_ID.desktop
    metainfo_file=$resources/$APP_ID.metainfo.xml
    svg_file=$resources/vitgallery.svg
    png_folder=$resources/icons  # then SIZE/vitgallery.png
    png_in=
else
    echo "error: $real has no share/applications/$APP_ID.desktop beside it" >&2
    exit 2
fi

mkdir -p "$data/applications" "$data/metainfo" "$data/icons/hicolor/scalable/apps"
# Exec names the executable itself: ~/.local/bin may not be on the PATH a desktop session starts with.
# Quoted as the Desktop Entry spec asks: \ " ` $ escaped inside the quotes, then every \ escaped
# again as in any string value; % doubled.
exec_path=$(printf '%s' "$executable" | sed -e 's/\\/\\\\\\\\/g' -e 's/["`$]/\\\\&/g' -e 's/%/%%/g')
try_path=$(printf '%s' "$executable" | sed -e 's/\\/\\\\/g')
EXEC_PATH=$exec_path TRY_PATH=$try_path awk '
    /^Exec=vitgallery / { sub(/^Exec=vitgallery /, ""); print "Exec=\"" ENVIRON["EXEC_PATH"] "\" " $0; next }
    /^TryExec=vitgallery$/ { print "TryExec=" ENVIRON["TRY_PATH"]; next }
    { print }
' "$desktop_file" > "$data/applications/$APP_ID.desktop"
cp "$metainfo_file" "$data/metainfo/"
cp "$svg_file" "$data/icons/hicolor/scalable/apps/"
for size in $icon_sizes; do
    mkdir -p "$data/icons/hicolor/$size/apps"
    cp "$png_folder/$size/${png_in}vitgallery.png" "$data/icons/hicolor/$size/apps/"
done
refresh
echo "vitgallery is in the applications menu and in \"Open with\" for images ($data/applications/$APP_ID.desktop)"

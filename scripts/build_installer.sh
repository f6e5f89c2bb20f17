#!/usr/bin/env bash
# Build the one-folder app (dist/TuneDesk) from build_installer.spec, then run its
# --self-test. Exit code: the self-test's (0 = the built app works on this machine).
# Run from an environment where TuneDesk runs (README setup): PyInstaller bundles what
# that environment has installed. On Windows run the same steps in Git Bash, or by hand:
#   pip install pyinstaller==6.22.3 && pyinstaller --noconfirm --clean build_installer.spec
#   dist\TuneDesk\tunedesk.exe --self-test
set -euo pipefail
cd "$(dirname "$0")/.."
PYINSTALLER_VERSION=6.22.3  # supports Python 3.8-3.14; pinned so builds are repeatable
PY="${PYTHON:-python3}"    # PYTHON=python where python3 is not the environment's (Windows)

"$PY" -c "import PyInstaller" 2>/dev/null || "$PY" -m pip install "pyinstaller==$PYINSTALLER_VERSION"

start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean build_installer.spec
echo "build time: $(( $(date +%s) - start )) s"
du -sh dist/TuneDesk

exe=dist/TuneDesk/tunedesk
[ -x "$exe" ] || exe=dist/TuneDesk/tunedesk.exe
start=$(date +%s)
rc=0
QT_QPA_PLATFORM=offscreen "$exe" --self-test || rc=$?
echo "self-test time: $(( $(date +%s) - start )) s, exit code $rc"
exit $rc

#!/usr/bin/env bash
# Make sure the Debian packages named as arguments are installed, e.g.
#   scripts/ensure-system-packages.sh chromium nodejs npm
# A package counts as present when what the project uses from it is there (chromium:
# /usr/bin/chromium; nodejs: node; npm: npm; python3-venv: ensurepip) or dpkg says so.
# Missing ones are installed with apt-get when run as root; otherwise the script prints the
# command to run and exits 1.
set -euo pipefail

present() {
  case $1 in
    chromium) [ -x /usr/bin/chromium ] ;;
    nodejs) command -v node >/dev/null ;;
    npm) command -v npm >/dev/null ;;
    python3-venv) python3 -c 'import ensurepip' 2>/dev/null ;;
    *) dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' ;;
  esac
}

missing=()
for package in "$@"; do
  present "$package" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "missing system packages: ${missing[*]}" >&2
  echo "run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"

#!/usr/bin/env bash
# Install Autobahn|Testsuite's wstest (25.10.1, a Python 2.7 program) into a prefix of its own,
# for tests/test_autobahn.py:
#
#     scripts/install-autobahn.sh                  # into /opt/autobahn (run as root)
#     AUTOBAHN_PREFIX=$HOME/autobahn scripts/install-autobahn.sh   # anywhere; then export the
#                                                  # same AUTOBAHN_PREFIX when running the tests
#
# Result: $AUTOBAHN_PREFIX/bin/wstest. Every listening socket wstest opens (its fuzzingserver)
# is bound to 127.0.0.1 instead of all interfaces.
#
# Python 2.7 comes from, in this order:
#   1. $AUTOBAHN_PYTHON2, or a python2.7 on PATH (pyenv, a distribution package, your build);
#   2. on Debian and Ubuntu, without one: Debian 11's python2.7 packages, downloaded with apt
#      through a package list of their own under the prefix (the system's apt configuration
#      and installed packages are not touched) and unpacked there. Needs apt-get and dpkg.
# Elsewhere, install a Python 2.7 first (e.g. `pyenv install 2.7.18`) and set AUTOBAHN_PYTHON2.
# wstest's dependencies come from the package index pip is configured with, at the versions
# pinned below; one of them (wsaccel) is compiled, so a C compiler must be there.
# Re-running the script skips what is done.
set -euo pipefail

PREFIX=$(realpath -m "${AUTOBAHN_PREFIX:-/opt/autobahn}")
WSTEST_VERSION=25.10.1
# Debian 11 moves from the mirrors to the archive when its support ends: try both.
DEBIAN_MIRRORS=${AUTOBAHN_DEBIAN_MIRROR:-http://deb.debian.org/debian http://archive.debian.org/debian}
DEBIAN_KEYRING=${AUTOBAHN_DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
HOST_PYTHON=${PYTHON:-python3}

say() { echo "install-autobahn: $*" >&2; }
die() { say "$*"; exit 1; }

mkdir -p "$PREFIX/bin" "$PREFIX/lib"

# --- 1. a Python 2.7 ----------------------------------------------------------------------
is_python27() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; }
python2=
if [ -n "${AUTOBAHN_PYTHON2:-}" ]; then
  is_python27 "$AUTOBAHN_PYTHON2" || die "AUTOBAHN_PYTHON2=$AUTOBAHN_PYTHON2 is not a working Python 2.7"
  python2=$AUTOBAHN_PYTHON2
elif [ -x "$PREFIX/debian/usr/bin/python2.7" ]; then
  python2=$PREFIX/debian/usr/bin/python2.7   # unpacked by an earlier run (step 2 below)
elif command -v python2.7 >/dev/null && is_python27 python2.7; then
  python2=$(command -v python2.7)
fi
if [ -z "$python2" ]; then
  command -v apt-get >/dev/null && command -v dpkg >/dev/null \
    || die "no python2.7 found and no apt-get here: install Python 2.7, then AUTOBAHN_PYTHON2=/path/to/python2.7 $0"
  [ -r "$DEBIAN_KEYRING" ] \
    || die "no $DEBIAN_KEYRING to check Debian's packages with: apt-get install debian-archive-keyring"
  arch=$(dpkg --print-architecture)
  apt_dir=$PREFIX/apt
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
  apt_options=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
    -o "Dir::State::Status=/dev/null" -o "APT::Architecture=$arch"
  )
  found=
  for mirror in $DEBIAN_MIRRORS; do
    echo "deb [arch=$arch signed-by=$DEBIAN_KEYRING] $mirror bullseye main" > "$apt_dir/sources.list"
    say "reading Debian 11's package list from $mirror into $apt_dir"
    if apt-get "${apt_options[@]}" update -qq && apt-cache "${apt_options[@]}" show python2.7 >/dev/null 2>&1; then
      found=$mirror
      break
    fi
  done
  [ -n "$found" ] || die "no Debian 11 package list found at: $DEBIAN_MIRRORS"
  # The interpreter, its headers (to compile wsaccel), and the two libraries of Debian 11 that
  # later releases renamed (OpenSSL 1.1 for ssl, libffi 7 for ctypes and cffi).
  packages=(python2.7 python2.7-minimal libpython2.7 libpython2.7-minimal libpython2.7-stdlib
            libpython2.7-dev python2.7-dev libssl1.1 libffi7)
  say "downloading ${packages[*]}"
  (cd "$apt_dir/debs" && apt-get "${apt_options[@]}" download -qq "${packages[@]}")
  rm -rf "$PREFIX/debian"
  for deb in "$apt_dir"/debs/*.deb; do dpkg-deb -x "$deb" "$PREFIX/debian"; done
  rm -rf "$apt_dir/lists" "$apt_dir/cache"
  python2=$PREFIX/debian/usr/bin/python2.7
fi

# A Debian python2.7 unpacked under the prefix looks for its library under /usr: point it home.
python_env=()
case $python2 in
  "$PREFIX"/debian/*)
    libpython=$(find "$PREFIX/debian/usr/lib" -name 'libpython2.7.so.1.0' | head -n 1)
    python_env=("PYTHONHOME=$PREFIX/debian/usr"
                "LD_LIBRARY_PATH=$(dirname "$libpython")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}") ;;
esac
run_python2() { env "${python_env[@]}" "$python2" "$@"; }
run_python2 -c 'import ssl, zlib' || die "$python2 lacks the ssl or zlib module that pip needs"

# --- 2. pip for Python 2.7, then wstest -----------------------------------------------------
site=$PREFIX/site-packages   # wstest and its dependencies only, read by the launcher
mkdir -p "$site"
if ! PYTHONPATH=$site run_python2 -m pip --version >/dev/null 2>&1; then
  say "fetching pip 20.3.4 (the last for Python 2.7) with $HOST_PYTHON's pip"
  wheels=$PREFIX/wheels
  "$HOST_PYTHON" -m pip download -q --no-deps --only-binary :all: --python-version 2.7 \
    -d "$wheels" pip==20.3.4 setuptools==44.1.1 wheel==0.37.1
  # pip runs from its own wheel to install itself (a documented bootstrap).
  PYTHONPATH=$wheels/pip-20.3.4-py2.py3-none-any.whl run_python2 -m pip install -q \
    --no-index --find-links "$wheels" --target "$site" pip setuptools wheel
fi

# The versions wstest 25.10.1 was last seen to work with on Python 2.7.
cat > "$PREFIX/constraints.txt" <<'EOF'
attrs==21.4.0
autobahn==0.10.9
Automat==22.10.0
cffi==1.15.1
constantly==15.1.0
cryptography==3.3.2
enum34==1.1.10
hyperlink==21.0.0
idna==2.10
incremental==16.10.1
ipaddress==1.0.23
Jinja2==2.11.3
klein==17.10.0
MarkupSafe==1.1.1
pyasn1==0.5.1
pyasn1-modules==0.3.0
pycparser==2.21
PyHamcrest==1.10.1
pyOpenSSL==19.1.0
service-identity==18.1.0
six==1.16.0
Twisted==19.10.0
txaio==2.1.0
typing==3.10.0.0
ujson==2.0.3
unittest2==1.1.0
linecache2==1.0.0
traceback2==1.4.0
Werkzeug==1.0.1
wsaccel==0.6.6
zope.interface==4.6.0
EOF
if ! PYTHONPATH=$site run_python2 -c "import autobahntestsuite.wstest" 2>/dev/null; then
  say "installing autobahntestsuite==$WSTEST_VERSION into $site"
  # The host's pip configuration may hold a constraints file for Python 3: use ours only.
  PIP_CONSTRAINT= PYTHONPATH=$site run_python2 -m pip install -q --no-warn-script-location \
    --no-python-version-warning --target "$site" --upgrade \
    -c "$PREFIX/constraints.txt" "autobahntestsuite==$WSTEST_VERSION"
fi

# --- 3. the launcher -------------------------------------------------------------------------
cat > "$PREFIX/lib/wstest_on_loopback.py" <<'EOF'
"""wstest, with every socket it listens on bound to 127.0.0.1 (Twisted's default is all
interfaces). Written by fullduplex's scripts/install-autobahn.sh."""
import os
import site
import sys

# wstest's packages, as a site directory: zope's namespace needs its .pth files read.
site.addsitedir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "site-packages"))

from twisted.internet.posixbase import PosixReactorBase


def listen_on_loopback(name, interface_index):
    listen = getattr(PosixReactorBase, name)

    def listen_on_loopback(self, *args, **kwargs):
        args = list(args)
        if len(args) > interface_index:
            args[interface_index] = args[interface_index] or "127.0.0.1"
        else:
            kwargs["interface"] = kwargs.get("interface") or "127.0.0.1"
        return listen(self, *args, **kwargs)

    setattr(PosixReactorBase, name, listen_on_loopback)


# listenTCP(port, factory, backlog, interface); listenSSL(port, factory, context, backlog, ...)
listen_on_loopback("listenTCP", 3)
listen_on_loopback("listenSSL", 4)

from autobahntestsuite.wstest import run  # after the patch, on purpose

sys.argv[0] = "wstest"
sys.exit(run())
EOF
{
  echo '#!/usr/bin/env bash'
  echo "# wstest $WSTEST_VERSION, installed by fullduplex's scripts/install-autobahn.sh."
  printf 'exec env'
  printf ' %q' "${python_env[@]}" "$python2" "$PREFIX/lib/wstest_on_loopback.py"
  printf ' "$@"\n'
} > "$PREFIX/bin/wstest"
chmod +x "$PREFIX/bin/wstest"
"$PREFIX/bin/wstest" --help >/dev/null || die "$PREFIX/bin/wstest does not start"
say "done: $PREFIX/bin/wstest"

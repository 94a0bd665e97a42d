#!/bin/sh
# The hostile-code suite (marker `hostile`) as an unprivileged user, for .ci/run when it runs
# as root: most users are not root, and as root the kernel also gets a leased uid and a network
# namespace, so both ways must hold.
#
# uid 65534 may not be able to enter this checkout's folder, nor root's home where the venv's
# python lives. So it gets a copy of the code, found through an import hook the way an editable
# install finds it (a sys.path or PYTHONPATH entry would make the code readable to the kernel,
# which the suite checks it is not), and a venv of the system python 3.11 that reads the
# project venv's site-packages.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null || [ ! -x /usr/bin/python3.11 ]; then
    echo "hostile suite, unprivileged: skipped (needs root, setpriv and /usr/bin/python3.11)" >&2
    exit 0
fi
NOBODY="$(mktemp -d)"
: "${NOBODY:?mktemp gave no folder}"
trap 'rm -rf "$NOBODY"' EXIT
mkdir "$NOBODY/home" "$NOBODY/tmp" "$NOBODY/src"
cp -r toolpath tests pyproject.toml "$NOBODY/src/"
/usr/bin/python3.11 -m venv --without-pip "$NOBODY/venv"
HOOKS="$NOBODY/venv/lib/python3.11/site-packages"
SITE="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
sed "s|@SRC@|$NOBODY/src|" .ci/toolpath_copy.py > "$HOOKS/toolpath_copy.py"
printf "import site; site.addsitedir('%s')\nimport toolpath_copy\n" "$SITE" > "$HOOKS/zz_toolpath.pth"
chmod 755 "$NOBODY"
chown -R 65534:65534 "$NOBODY/home" "$NOBODY/tmp" "$NOBODY/src"
cd "$NOBODY/home"
setpriv --reuid=65534 --regid=65534 --clear-groups \
    env HOME="$NOBODY/home" TMPDIR="$NOBODY/tmp" \
    "$NOBODY/venv/bin/python" -m pytest -q -p no:cacheprovider -m hostile \
    --rootdir "$NOBODY/src" -c "$NOBODY/src/pyproject.toml" "$NOBODY/src/tests"

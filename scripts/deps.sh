#!/bin/sh
# Installs the Debian packages Petrel builds and tests with; a no-op when all are present.
set -e
PKGS="build-essential cmake pkg-config clang libuv1-dev libssl-dev libsqlite3-dev
      libsasl2-dev libsasl2-modules libinih-dev libcmocka-dev zlib1g-dev libcrypt-dev
      openssl python3 python3-pytest swaks libnet-ssleay-perl libauthen-sasl-perl
      msmtp curl sqlite3 isync fetchmail"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

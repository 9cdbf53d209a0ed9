#!/bin/sh
# Installs the Debian packages Petrel builds and tests with; a no-op when all are present.
set -e
PKGS="build-essential cmake pkg-config clang libuv1-dev libssl-dev libsqlite3-dev
      libsasl2-dev libsasl2-modules libinih-dev libcmocka-dev zlib1g-dev libcrypt-dev
      openssl python3 python3-pytest swaks libnet-ssleay-perl libauthen-sasl-perl
      msmtp curl sqlite3 isync fetchmail
      libc-ares-dev python3-dnslib publicsuffix python3-dkim"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Dovecot's imap binary, the reference of tests/integration/test_imap_dovecot.py.
# Debian's postinst would start the Dovecot service: while the package
# installs, a policy-rc.d answers 101 ("action forbidden"); the previous
# policy, if any, is put back afterwards.
if ! dpkg-query -W -f='${Status}' dovecot-imapd 2>/dev/null | grep -q "install ok installed"; then
    echo "installing: dovecot-imapd (its service not started)"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    policy=/usr/sbin/policy-rc.d
    saved=
    if [ -e "$policy" ]; then
        saved=$(mktemp)
        $SUDO cp -p "$policy" "$saved"
    fi
    restore_policy() {
        if [ -n "$saved" ]; then
            $SUDO cp -p "$saved" "$policy"
            $SUDO rm -f "$saved"
        else
            $SUDO rm -f "$policy"
        fi
    }
    trap restore_policy EXIT
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        dovecot-imapd >/dev/null
    restore_policy
    trap - EXIT
fi
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

#!/bin/sh
# make run: a development server in the foreground, everything under var/dev/.
# First run: a self-signed certificate for the hostname, domain example.test
# and a demo user whose random password is printed. Later runs reuse them.
set -eu
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
dev=$top/var/dev
host=mail.example.test
conf=$dev/petrel.conf
ctl="$build/petrelctl -c $conf"

mkdir -p "$dev/data"
[ -f "$dev/tls/cert.pem" ] || "$top/scripts/make-cert.sh" "$host" "$dev/tls"

cat > "$conf" <<CONF
; Written by make run (scripts/dev-run.sh). See docs/configuration.md.
[server]
hostname = $host
data_dir = $dev/data

[tls]
cert = $dev/tls/cert.pem
key = $dev/tls/key.pem

[listen]
smtp = 127.0.0.1:2525
submission = 127.0.0.1:2587
submissions = 127.0.0.1:2465
imap = 127.0.0.1:2143
imaps = 127.0.0.1:2993
pop3 = 127.0.0.1:2110
pop3s = 127.0.0.1:2995

[auth]
; development only: lets PLAIN/LOGIN work without TLS from this machine
plaintext_on_loopback = yes

[log]
level = info
CONF

if [ ! -f "$dev/demo-password" ]; then
    $ctl domain add example.test
    pw=$(openssl rand -base64 12)
    printf '%s\n' "$pw" | $ctl user add demo@example.test --password-stdin
    printf '%s\n' "$pw" > "$dev/demo-password"
    chmod 600 "$dev/demo-password"
fi
pw=$(cat "$dev/demo-password")

cat <<INFO

Petrel development server ($conf)

  Thunderbird: Account Settings > Add Mail Account > Configure manually
    Your name:  Demo
    Email:      demo@example.test
    Password:   $pw
    Outgoing (SMTP): server 127.0.0.1, port 2587, STARTTLS, Normal password,
                     username demo@example.test
                     (or port 2465 with SSL/TLS)
    Incoming: IMAP 127.0.0.1 port 2993 SSL/TLS or 2143 STARTTLS
              (or POP3 127.0.0.1 port 2995 SSL/TLS or 2110 STARTTLS)
    The certificate is self-signed for $host: accept the security exception once.

  Try it:  swaks --server 127.0.0.1:2525 --to demo@example.test
  Admin:   $ctl user list

INFO
exec "$build/petreld" -c "$conf"

#!/bin/sh
# make-cert.sh HOSTNAME DIR: a self-signed server certificate for HOSTNAME
# (SAN = HOSTNAME, CA:FALSE, serverAuth; ECDSA P-256, 825 days) written to
# DIR/cert.pem and DIR/key.pem. Used by `make run` and by the tests.
set -eu
host=$1
dir=$2
mkdir -p "$dir"
umask 077
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 825 -subj "/CN=$host" \
    -addext "subjectAltName=DNS:$host" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" 2>/dev/null
chmod 644 "$dir/cert.pem"

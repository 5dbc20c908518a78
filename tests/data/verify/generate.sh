#!/usr/bin/env bash
# Regenerate the test keys of tests/test_verify.py (TEST ONLY). Run once; the tests import the
# resulting files and never generate keys.
# - subkey-signer: signatures are made by a signing SUBKEY, to show that portal-verify
#   attributes them to the primary key;
# - expired-signer: valid for 2020 only (clock faked), to show that a signature made while the
#   key was valid still verifies after the key expired.
set -euo pipefail

OUT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export GNUPGHOME
GNUPGHOME="$(mktemp -d /tmp/pg-gen-XXXXXX)"
chmod 700 "$GNUPGHOME"
cleanup() {
    gpgconf --homedir "$GNUPGHOME" --kill all || true
    rm -rf "$GNUPGHOME"
}
trap cleanup EXIT

GPG=(gpg --homedir "$GNUPGHOME" --batch --no-tty --pinentry-mode loopback --passphrase "")

# Primary key: certify only. Subkeys: ed25519 for signing, cv25519 for encryption.
uid="Subkey Signer Test Key (TEST ONLY) <subkey-signer@test.example>"
"${GPG[@]}" --quick-generate-key "$uid" ed25519 cert never
fpr="$("${GPG[@]}" --with-colons --list-keys "=$uid" | awk -F: '/^fpr:/ { print $10; exit }')"
"${GPG[@]}" --quick-add-key "$fpr" ed25519 sign never
"${GPG[@]}" --quick-add-key "$fpr" cv25519 encr never
"${GPG[@]}" --armor --export "$fpr" > "$OUT/subkey-signer.pub.asc"
"${GPG[@]}" --armor --export-secret-keys "$fpr" > "$OUT/subkey-signer.sec.asc"
"${GPG[@]}" --with-colons --list-keys "$fpr" \
    | awk -F: '/^fpr:/ { print $10 }' > "$OUT/subkey-signer.fingerprints"

# expired-signer: made with the clock faked to 2020-01-01, valid for one year, no passphrase.
uid="Expired Signer Test Key (TEST ONLY) <expired-signer@test.example>"
"${GPG[@]}" --faked-system-time 20200101T000000 --quick-generate-key "$uid" ed25519 sign,cert 1y
fpr="$("${GPG[@]}" --with-colons --list-keys "=$uid" | awk -F: '/^fpr:/ { print $10; exit }')"
"${GPG[@]}" --faked-system-time 20200101T000000 --quick-add-key "$fpr" cv25519 encr 1y
"${GPG[@]}" --armor --export "$fpr" > "$OUT/expired-signer.pub.asc"
"${GPG[@]}" --armor --export-secret-keys "$fpr" > "$OUT/expired-signer.sec.asc"
echo "$fpr" > "$OUT/expired-signer.fingerprint"

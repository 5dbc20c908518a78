#!/usr/bin/env bash
# Regenerate the deliberately bad public keys used by tests/test_openpgp.py (TEST ONLY).
# Run once; the tests read the resulting files and never generate keys themselves.
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

fpr_of() {
    "${GPG[@]}" --with-colons --list-keys "=$1" | awk -F: '/^fpr:/ { print $10; exit }'
}

# expired: made with the clock faked to 2020-01-01, primary and subkey valid for one year.
uid="Expired Test Key (TEST ONLY) <expired@test.example>"
"${GPG[@]}" --faked-system-time 20200101T000000 --quick-generate-key "$uid" ed25519 sign,cert 1y
fpr="$(fpr_of "$uid")"
"${GPG[@]}" --faked-system-time 20200101T000000 --quick-add-key "$fpr" cv25519 encr 1y
"${GPG[@]}" --armor --export "$fpr" > "$OUT/expired.pub.asc"

# revoked: a good key, then its revocation certificate (gpg writes one at generation) imported.
uid="Revoked Test Key (TEST ONLY) <revoked@test.example>"
"${GPG[@]}" --quick-generate-key "$uid" ed25519 sign,cert never
fpr="$(fpr_of "$uid")"
"${GPG[@]}" --quick-add-key "$fpr" cv25519 encr never
sed 's/^:-----BEGIN PGP PUBLIC KEY BLOCK-----/-----BEGIN PGP PUBLIC KEY BLOCK-----/' \
    "$GNUPGHOME/openpgp-revocs.d/$fpr.rev" | "${GPG[@]}" --import
"${GPG[@]}" --armor --export "$fpr" > "$OUT/revoked.pub.asc"

# rsa2048: RSA primary and RSA encryption subkey, both 2048 bits (too short).
uid="RSA 2048 Test Key (TEST ONLY) <rsa2048@test.example>"
"${GPG[@]}" --quick-generate-key "$uid" rsa2048 sign,cert never
fpr="$(fpr_of "$uid")"
"${GPG[@]}" --quick-add-key "$fpr" rsa2048 encr never
"${GPG[@]}" --armor --export "$fpr" > "$OUT/rsa2048.pub.asc"

# signonly: ed25519 primary for signing/certifying, no encryption subkey.
uid="Sign Only Test Key (TEST ONLY) <signonly@test.example>"
"${GPG[@]}" --quick-generate-key "$uid" ed25519 sign,cert never
fpr="$(fpr_of "$uid")"
"${GPG[@]}" --armor --export "$fpr" > "$OUT/signonly.pub.asc"

# two-keys: two good ed25519+cv25519 keys exported together in ONE armored block.
fprs=()
for who in one two; do
    uid="Two Keys Test Key $who (TEST ONLY) <$who@test.example>"
    "${GPG[@]}" --quick-generate-key "$uid" ed25519 sign,cert never
    fpr="$(fpr_of "$uid")"
    "${GPG[@]}" --quick-add-key "$fpr" cv25519 encr never
    fprs+=("$fpr")
done
"${GPG[@]}" --armor --export "${fprs[@]}" > "$OUT/two-keys.pub.asc"

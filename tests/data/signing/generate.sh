#!/usr/bin/env bash
# Regenerate the signing-key test keys of tests/verify/test_verify_transition.py and
# tests/verify/test_verify_stock_tools.py (TEST ONLY). Run once; the tests import the files.
# - successor: an ed25519 signing key (no passphrase) the mechanism hands over to;
# - revoked-signer: an ed25519 signing key and, apart, its revocation certificate (reason:
#   "key has been compromised"), which a test imports to revoke it in a recipient's keyring.
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

for name in successor revoked-signer; do
    uid="Signing Key ${name} (TEST ONLY) <${name}@test.example>"
    "${GPG[@]}" --quick-generate-key "$uid" ed25519 sign,cert never
    fpr="$("${GPG[@]}" --with-colons --list-keys "=$uid" | awk -F: '/^fpr:/ { print $10; exit }')"
    "${GPG[@]}" --armor --export "$fpr" > "$OUT/$name.pub.asc"
    "${GPG[@]}" --armor --export-secret-keys "$fpr" > "$OUT/$name.sec.asc"
    echo "$fpr" > "$OUT/$name.fingerprint"
done

# The revocation certificate: reason 1 (compromised), made with the command a key holder uses.
fpr="$(cat "$OUT/revoked-signer.fingerprint")"
printf 'y\n1\nThe key was compromised (test)\n\ny\n' \
    | gpg --homedir "$GNUPGHOME" --no-tty --pinentry-mode loopback --passphrase "" \
        --command-fd 0 --status-fd 2 --yes --armor --output "$OUT/revoked-signer.rev" --gen-revoke "$fpr"

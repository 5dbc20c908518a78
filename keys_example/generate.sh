#!/usr/bin/env bash
# Regenerate the fictional example OpenPGP keys in keys_example/ (DEMO/TEST ONLY).
#
# Every key: ed25519 primary (sign, certify) + cv25519 subkey (encrypt), no expiry.
# Output, next to this script: <name>.pub.asc, <name>.sec.asc and fingerprints.json.
# Running it again makes NEW keys with NEW fingerprints: anything pinned to the old ones
# (demo seed data, tests) must be updated with them.
set -euo pipefail

OUT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PASSPHRASE="$(head -n 1 "$OUT/mechanism-signing.passphrase" 2>/dev/null || true)"
if [[ -z "$PASSPHRASE" ]]; then
    PASSPHRASE="demo-only mechanism signing passphrase 2026"
    printf '%s\n' "$PASSPHRASE" > "$OUT/mechanism-signing.passphrase"
fi

# Short, private keyring under /tmp: gpg-agent's socket path must stay short.
export GNUPGHOME
GNUPGHOME="$(mktemp -d /tmp/pg-gen-XXXXXX)"
chmod 700 "$GNUPGHOME"
cleanup() {
    gpgconf --homedir "$GNUPGHOME" --kill all || true
    rm -rf "$GNUPGHOME"
}
trap cleanup EXIT

GPG=(gpg --homedir "$GNUPGHOME" --batch --no-tty --pinentry-mode loopback)

# name|uid|passphrase ("" = unprotected)
KEYS=(
    "mechanism-signing|Example Mechanism Signing Key (DEMO ONLY) <signing@mechanism.example>|$PASSPHRASE"
    "mechanism-archive|Example Mechanism Archive Key (DEMO ONLY) <archive@mechanism.example>|"
    "NWU-NL|Northland War Crimes Unit (DEMO ONLY) <nwu@authority.example>|"
    "SPR-ES|Southport Prosecution Service (DEMO ONLY) <spr@authority.example>|"
    "ECT-EV|Eastvale Criminal Tribunal (DEMO ONLY) <ect@authority.example>|"
    "WJD-WR|Westreach Justice Department (DEMO ONLY) <wjd@authority.example>|"
    "RCP-RV|Riverton Court Prosecutors (DEMO ONLY) <rcp@authority.example>|"
)

json="{"
sep=""
for entry in "${KEYS[@]}"; do
    IFS='|' read -r name uid pass <<< "$entry"
    "${GPG[@]}" --passphrase "$pass" --quick-generate-key "$uid" ed25519 sign,cert never
    fpr="$("${GPG[@]}" --with-colons --list-keys "=$uid" | awk -F: '/^fpr:/ { print $10; exit }')"
    "${GPG[@]}" --passphrase "$pass" --quick-add-key "$fpr" cv25519 encr never
    "${GPG[@]}" --armor --export "$fpr" > "$OUT/$name.pub.asc"
    "${GPG[@]}" --passphrase "$pass" --armor --export-secret-keys "$fpr" > "$OUT/$name.sec.asc"
    json+="$sep"$'\n'"  \"$name\": \"$fpr\""
    sep=","
    echo "$name $fpr"
done
printf '%s\n}\n' "$json" > "$OUT/fingerprints.json"

#!/usr/bin/env bash
# Fetch the real-world message corpus of the Dovecot differential test
# (crates/server/tests/dovecot_fetch.rs, docs/dovecot-differences.md "Real-world corpus").
#
# The corpus is the test messages shipped in the `mail-parser` 1.0.1 package on crates.io
# (resources/eml: 202 files). It is not a dependency of ours (we use 0.11.9, whose package ships
# only part of them), so a throwaway Cargo project depending on `mail-parser = "=1.0.1"` is
# vendored with `cargo vendor` (crates.io is the only network access) and the package is copied
# to DEST/mail-parser. The second half of the corpus, Python's test_email messages, comes from
# Debian's `libpython3.11-testsuite` package (/usr/lib/python3.11/test/test_email/data), which
# `.ci/run` installs with apt.
#
# Usage: bench/fetch-corpus.sh [DEST]   (default: $POSTFACH_CORPUS or /var/cache/postfach-corpus)
# Does nothing when DEST/mail-parser/resources/eml is already there.
set -euo pipefail

DEST="${1:-${POSTFACH_CORPUS:-/var/cache/postfach-corpus}}"
EML="$DEST/mail-parser/resources/eml"
if [ -d "$EML" ]; then
  echo "corpus already in $DEST"
  exit 0
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/src"
cat >"$scratch/Cargo.toml" <<'EOF'
[package]
name = "postfach-corpus-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
# Only the package's files are wanted; no optional dependency needs to be vendored.
mail-parser = { version = "=1.0.1", default-features = false }

[workspace]
EOF
: >"$scratch/src/lib.rs"
(cd "$scratch" && cargo vendor --quiet vendor >/dev/null)

mkdir -p "$DEST"
rm -rf "$DEST/mail-parser.new"
cp -r "$scratch/vendor/mail-parser" "$DEST/mail-parser.new"
mv "$DEST/mail-parser.new" "$DEST/mail-parser"
count="$(find "$EML" -type f -name '*.eml' | wc -l)"
echo "corpus: $count mail-parser messages in $EML"

#!/usr/bin/env bash
# Regenerates common-passwords.txt.gz from the npm package named in README.md.
#
# Needs: npm (to fetch the package tarball from the npm registry), node (to read
# its JSON), gzip, sha256sum. Run from anywhere; writes next to this script.
#
# Output format: UTF-8 text, one password per line, lower-cased, de-duplicated,
# in the source's order (most common first), gzip -9 without a name or timestamp
# so the file is byte-for-byte reproducible.
set -euo pipefail

pkg="@zxcvbn-ts/language-common"
version="4.1.3"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
tarball="$(npm pack --silent "${pkg}@${version}")"
echo "tarball: ${tarball}"
sha256sum "${tarball}"
tar xzf "${tarball}"

node -e '
const list = require(process.argv[1]);
if (!Array.isArray(list)) { throw new Error("passwords.json is not an array"); }
const seen = new Set();
const out = [];
for (const raw of list) {
  const pw = String(raw).normalize("NFKC").toLowerCase();
  if (pw === "" || pw.includes("\n") || seen.has(pw)) continue;
  seen.add(pw);
  out.push(pw);
}
process.stdout.write(out.join("\n") + "\n");
' "$work/package/src/passwords.json" > "$work/common-passwords.txt"

wc -l < "$work/common-passwords.txt"
gzip -9 -n -c "$work/common-passwords.txt" > "$here/common-passwords.txt.gz"
sha256sum "$here/common-passwords.txt.gz"

#!/usr/bin/env bash
# Installs the Debian packages the test suite drives as real peers: the AWS CLI,
# boto3, the Ruby SDK v3 and the Go SDKs v1 and v2 (sources, built offline with
# golang-go), python3-google-auth (Google's metadata-server client) and python3-azure
# (azure-identity, against the managed identity endpoint) as clients,
# python3-prometheus-client (an independent parser of the /metrics text format), SoftHSM2 as a PKCS#11 token, opensc's pkcs11-tool,
# plistutil (launchd plists), systemd-analyze (unit files), clang (the macOS
# peer lookup's and Secure Enclave store's syntax checks for Apple targets, with
# the arm64 C and C++ library headers for arm64-apple-macos), and curl, useradd (passwd)
# and unshare (util-linux) for the user-isolation tests, and zsh and fish to
# check the completion scripts credport prints for them, and a software TPM 2.0
# (swtpm, tpm2-abrmd with its TCTI on a private D-Bus, tpm2-tools, tpm2-pkcs11 and
# tpm2_ptool) for the TPM tests.
# moto's server (S3 for the publish tests) and cfn-lint come with the image's pip
# (not packaged for Debian; PyPI may be out of reach).
# Installs only what is missing; needs root (or sudo) to install. Under CI=true
# a package that cannot be installed is an error; elsewhere the tests that need
# it are skipped with a note.
set -euo pipefail

PACKAGES=(awscli python3-boto3 python3-google-auth python3-prometheus-client python3-azure ruby-aws-sdk-core golang-go golang-github-aws-aws-sdk-go-dev golang-github-aws-aws-sdk-go-v2-dev softhsm2 opensc libplist-utils systemd libp11-kit-dev curl passwd util-linux clang zsh fish swtpm swtpm-tools tpm2-abrmd libtss2-tcti-tabrmd0 tpm2-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools dbus libc6-dev-arm64-cross libstdc++-12-dev-arm64-cross)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# From pip, not apt (Debian's are too old to know every resource type the templates use): cfn-lint
# checks the templates of 'credport setup aws'; moto's server stands in for CloudFormation. Reported only.
command -v cfn-lint >/dev/null 2>&1 || { echo "system-deps: cfn-lint missing: pip install cfn-lint" >&2; [ "${CI:-}" = "true" ] && exit 1; }
python3 -c 'import moto.server' 2>/dev/null || { echo "system-deps: moto missing: pip install 'moto[server]'" >&2; [ "${CI:-}" = "true" ] && exit 1; }

[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: apt-get not found; install these yourself: ${missing[*]}" >&2
  [ "${CI:-}" = "true" ] && exit 1 || exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "system-deps: not root; install these to run every test: sudo apt-get install ${missing[*]}" >&2
    [ "${CI:-}" = "true" ] && exit 1 || exit 0
  fi
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

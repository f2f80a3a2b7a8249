#!/usr/bin/env bash
# The main job, end to end: build opsgate, start a 3-host lab of real OpenSSH servers on
# 127.0.0.x, provision an app directory on every host, back it up, list the backups the audit
# history recorded, and run the read-only health check.
# The lab stays up afterwards for exploring; stop it with `target/release/opsgate lab down`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --release --quiet
opsgate=target/release/opsgate

"$opsgate" lab down >/dev/null 2>&1 || true
inventory=$("$opsgate" lab up --hosts 3 | tail -n 1)
echo "lab inventory: $inventory"

"$opsgate" validate runbooks/*.yaml
"$opsgate" -i "$inventory" plan provision-app -l lab
"$opsgate" -i "$inventory" run provision-app
"$opsgate" -i "$inventory" run backup-files -p keep=3
"$opsgate" backups
"$opsgate" -i "$inventory" run health-check

echo
echo "the lab is still running: try \`$opsgate -i $inventory run backup-files --check\`"
echo "stop it with: $opsgate lab down"

#!/usr/bin/env bash
# Runs a command and prints its resident memory (MB) every 10 s, e.g. to see a trainer's memory stay flat:
#   scripts/rss-watch.sh ./skipflow moe --active-ratio 0.5 --steps 800 --out target/moe-rss --force
# The command's own output goes to target/rss-cmd.log.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
"$@" > target/rss-cmd.log 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  rss=$(ps -o rss= -p "$pid" 2>/dev/null)
  echo "$(date +%T) rss_mb=$(( ${rss:-0} / 1024 ))"
  sleep 10
done
wait "$pid"

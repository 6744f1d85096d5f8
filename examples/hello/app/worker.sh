#!/bin/sh
# Worker role: one log line a second, like a queue worker polling for jobs.
trap 'echo "worker: stopping"; exit 0' TERM INT
n=0
while true; do
  n=$((n + 1))
  echo "worker: tick $n (version $(cat /app/www/version.txt))"
  sleep 1
done

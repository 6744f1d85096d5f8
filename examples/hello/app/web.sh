#!/bin/sh
# Web role: serve /app/www on :8080 (busybox httpd), with the greeting from the ConfigMap.
# It serves /app/www itself, so files a live update copies there are served at the next request.
# No -v: probe requests every second would drown the dev loop's own lines in `inv dev`.
set -e
echo "${GREETING:-hello}" > /app/www/greeting.txt
echo "web: listening on :8080 (version $(cat /app/www/version.txt))"
exec httpd -f -p 8080 -h /app/www

#!/bin/sh
# Web role: serve /app/www on :8080 (busybox httpd), with the greeting from the ConfigMap.
set -e
mkdir -p /tmp/www
cp -r /app/www/. /tmp/www/
echo "${GREETING:-hello}" > /tmp/www/greeting.txt
echo "web: listening on :8080 (version $(cat /app/www/version.txt))"
exec httpd -f -v -p 8080 -h /tmp/www

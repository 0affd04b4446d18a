#!/usr/bin/env bash
# Development only: rebuilds static/css/guildhall.css from tools/frontend/guildhall.input.css
# and the templates with the npm `tailwindcss` package (pinned in tools/frontend/package.json).
# The built, minified CSS is committed, so building or running guildhall needs no Node.
# Run it after changing a template's classes or the input CSS: ./scripts/build-css.sh
set -euo pipefail
cd "$(dirname "$0")/../tools/frontend"
[ -d node_modules/tailwindcss ] || npm ci --no-fund --no-audit
npx --no-install tailwindcss -c tailwind.config.js -i guildhall.input.css \
  -o ../../static/css/guildhall.css --minify

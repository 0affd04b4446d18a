#!/usr/bin/env bash
# Development only: copies the browser libraries guildhall serves from the npm packages pinned in
# tools/frontend/package.json into static/vendor, with their licences, and records the versions
# in static/vendor/VERSIONS. Run after changing a version there: ./scripts/vendor-assets.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/tools/frontend"
npm ci --no-fund --no-audit
nm="$root/tools/frontend/node_modules"
out="$root/static/vendor"
version() { node -p "require('$nm/$1/package.json').version"; }
mkdir -p "$out/htmx" "$out/alpine"
cp "$nm/htmx.org/dist/htmx.min.js" "$out/htmx/htmx.min.js"
cp "$nm/htmx.org/LICENSE" "$out/htmx/LICENSE"
cp "$nm/htmx-ext-ws/dist/ws.min.js" "$out/htmx/ws.min.js"
cp "$nm/htmx-ext-ws/LICENSE" "$out/htmx/LICENSE.ws"
cp "$nm/@alpinejs/csp/dist/cdn.min.js" "$out/alpine/alpine-csp.min.js"
# The package ships no licence file; its package.json says MIT (Alpine.js, bundling @vue/reactivity).
cp "$root/tools/frontend/LICENSE.alpine" "$out/alpine/LICENSE"
{
  echo "# Vendored browser libraries (npm package, version, licence). Rebuilt by scripts/vendor-assets.sh."
  for p in htmx.org htmx-ext-ws @alpinejs/csp; do
    echo "$p $(version "$p") $(node -p "require('$nm/$p/package.json').license || 'licence in its LICENSE file (0BSD)'")"
  done
  echo "redoc 2.5.4 MIT (static/vendor/redoc, see its VERSION)"
} > "$out/VERSIONS"

#!/usr/bin/env bash
# Renders per second of the stock summary template: aftercall's mustache
# engine (C, through the engine ABI, Markdown escaping, the context parsed
# from JSON each time) next to npm's mustache (JavaScript, context parsed
# once) in the same run. Usage: bench/render.sh [SECONDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
[ -x bench/render ] || make -s bench/render
[ -d bench/node_modules/mustache ] || (cd bench && npm ci --no-audit --no-fund --loglevel=error)
ctx=tests/data/contexts/full.json
c=$(./libtool --mode=execute bench/render plugin/mustache/.libs/mustache.so templates "$ctx" "$secs")
js=$(node bench/render.cjs templates "$ctx" "$secs")
c_rate=$(sed -n 's/^renders_per_second //p' <<<"$c")
js_rate=$(sed -n 's/^renders_per_second //p' <<<"$js")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "template: templates/summary.md (+ greeting, signature partials), context: $ctx"
printf '%-44s %10s renders/s\n' "aftercall mustache (C, markdown escaping)" "$c_rate"
printf '%-44s %10s renders/s\n' "npm mustache $(node -p "require('./bench/node_modules/mustache/package.json').version") (node $(node --version))" "$js_rate"
awk -v a="$c_rate" -v b="$js_rate" 'BEGIN { printf "ratio aftercall/npm: %.1fx\n", a / b }'

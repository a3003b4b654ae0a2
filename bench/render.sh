#!/usr/bin/env bash
# Renders per second of the stock summary template: aftercall's mustache
# engine (C, through the host's templates_render and the engine ABI,
# Markdown escaping) next to npm's mustache (JavaScript, view parsed once) in
# the same run. aftercall is measured two ways (bench/render.c):
#   per email:           the context parsed from JSON once per email, then
#                        subject + body rendered (what the host does);
#   context parsed once: parsed before the loop, subject + body rendered
#                        each time (the same work as npm's loop).
# Usage: bench/render.sh [SECONDS]   (default 3; each of the three runs that
# long). RENDER_BIN and MUSTACHE_SO override the binaries (default: the
# build tree's bench/render and plugin/mustache/.libs/mustache.so).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
bin=${RENDER_BIN:-}
so=${MUSTACHE_SO:-plugin/mustache/.libs/mustache.so}
if [ -z "$bin" ]; then
	[ -x bench/render ] || make -s bench/render
	bin="./libtool --mode=execute bench/render"
fi
[ -d bench/node_modules/mustache ] || (cd bench && npm ci --no-audit --no-fund --loglevel=error)
ctx=tests/data/contexts/full.json
c=$($bin "$so" templates "$ctx" "$secs")
js=$(node bench/render.cjs templates "$ctx" "$secs")
per_email=$(sed -n 's/^per_email_renders_per_second //p' <<<"$c")
parsed_once=$(sed -n 's/^parsed_once_renders_per_second //p' <<<"$c")
js_rate=$(sed -n 's/^renders_per_second //p' <<<"$js")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "template: templates/summary.md (+ greeting, signature partials), context: $ctx"
echo "$(sed -n 's/^engine //p' <<<"$c")"
row() { printf '%-58s %10s renders/s %8s\n' "$1" "$2" "$3"; }
ratio() { awk -v a="$1" -v b="$js_rate" 'BEGIN { printf "%.1fx", a / b }'; }
row "aftercall mustache, per email (JSON parsed per email)" "$per_email" "$(ratio "$per_email")"
row "aftercall mustache, context parsed once" "$parsed_once" "$(ratio "$parsed_once")"
row "npm mustache $(node -p "require('./bench/node_modules/mustache/package.json').version") (node $(node --version)), view parsed once" "$js_rate" "1.0x"

#!/usr/bin/env bash
# check-layers.sh — `make check-layers`: the include rule of docs/architecture.md.
#
# The core under src/ is in layers, one folder each, lowest first:
#
#   base  db  media  live  push  chat  http
#
# A file may include headers of its own folder and of the folders before it,
# never of a later one; nothing under src/ includes from handlers/ (the
# application on top: it may include anything under src/). src/main.c wires
# the layers together and may include any of them; so may src/chatctl.c,
# the operator's command. Prints every violation as
# FILE:LINE: and exits 1 when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

layers=(base db media live push chat http)
rank() { # rank of a folder name, or -1
  local i
  for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }; done
  echo -1
}

bad=0
while IFS= read -r file; do
  dir=${file#src/}; dir=${dir%%/*}
  if [ "$file" = src/main.c ] || [ "$file" = src/chatctl.c ]; then own=${#layers[@]}; else own=$(rank "$dir"); fi
  if [ "$own" -lt 0 ]; then
    echo "$file: not in a layer folder (${layers[*]})"; bad=1; continue
  fi
  while IFS=: read -r line inc; do
    inc=${inc#*\"}; inc=${inc%\"*}
    case $inc in
      */*) ;;
      *) # a bare name: a header beside the file, or one of handlers/
         if [ -e "$(dirname "$file")/$inc" ]; then continue; fi
         echo "$file:$line: includes \"$inc\", which is not in its folder (from handlers/?)"
         bad=1; continue ;;
    esac
    case $inc in ../*|*handlers/*)
      echo "$file:$line: includes \"$inc\": src/ never includes from handlers/"; bad=1; continue ;;
    esac
    r=$(rank "${inc%%/*}")
    if [ "$r" -lt 0 ]; then
      echo "$file:$line: includes \"$inc\", which is in no layer"; bad=1
    elif [ "$r" -gt "$own" ]; then
      echo "$file:$line: \"$inc\" is in a later layer than $file (order: ${layers[*]})"; bad=1
    fi
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
done < <(find src -name '*.[ch]' | sort)

[ $bad -eq 0 ] && echo "layers: ok (${layers[*]})"
exit $bad

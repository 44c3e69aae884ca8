#!/bin/bash
# Export a project in every format and read each export with the tools people use (never project dependencies).
#   python3 -m venv /tmp/format-tools && /tmp/format-tools/bin/pip install got10k motmetrics trackeval \
#       vot-toolkit "attributee==0.1.9" datumaro
#   scripts/format_tools/run.sh PROJECT.json OTB_SEQUENCE_PROJECT.json OUT_DIR [/tmp/format-tools/bin/python]
# PROJECT: any project whose video is known (frames are exported too); OTB_SEQUENCE_PROJECT: a project of an OTB
# sequence that vot-toolkit knows by name (e.g. `atom import OTB/Crossing --format otb --video OTB/Crossing/img`).
# attributee 0.1.10 (vot-toolkit's dependency) does not import on Python 3.11: 0.1.9 does.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
project=$1 otb=$2 out=$3 py=${4:-/tmp/format-tools/bin/python}
atom=${ATOM:-atom}
rm -rf "$out" && mkdir -p "$out"
$atom export "$project" --format lasot --out "$out/lasot" --missing absent --frames >/dev/null
$atom export "$project" --format got10k --out "$out/got10k/val" --missing absent --frames >/dev/null
$atom export "$project" --format vot --out "$out/vot" --missing absent --frames >/dev/null
$atom export "$project" --format trackingnet --out "$out/tn/TEST" --missing absent --frames >/dev/null
$atom export "$otb" --format otb --out "$out/otb" --frames >/dev/null
$atom export "$project" --format mot --out "$out/mot1" >/dev/null
$atom export "$project" --format mot --out "$out/mot0" --origin 0 >/dev/null
$atom export "$project" --format cvat --out "$out/cvat" >/dev/null
mot=$(ls -d "$out"/mot1/*) mot0=$(ls -d "$out"/mot0/*) otbseq=$(ls -d "$out"/otb/*)
lasot=$(cd "$out/lasot" && ls -d */* | xargs -n1 basename | paste -sd,)
echo "== got10k";   "$py" "$here/check_got10k.py" "$out/got10k" 2>&1 | grep -v -i warn
echo "== vot";      "$py" "$here/check_vot.py" "$out/vot" 2>&1 | grep -v -i warn
echo "== datumaro"; "$py" "$here/check_datumaro.py" "$out/cvat" "$mot0" "$project" 2>&1 | grep -v -i warn
echo "== mot";      "$py" "$here/check_mot.py" "$mot" "$out/trackeval" 2>&1 | grep "motmetrics:\|TrackEval:"
echo "== others";   "$py" "$here/check_others.py" "$otbseq" "$out/tn" "$out/lasot" "$lasot" 2>&1 | grep -v -i warn

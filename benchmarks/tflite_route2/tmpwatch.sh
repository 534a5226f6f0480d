#!/bin/bash
# fp32 conversion with TMPDIR and HOME redirected, snapshotting TMPDIR every 0.5 s
set -u
R=/tmp/onnx2tf-route; cd $R/work || exit 1
rm -rf $R/tmpdir_watch $R/home_tmpwatch $R/tmpdir_seen.txt out_tw; mkdir -p $R/tmpdir_watch $R/home_tmpwatch
cp /work/main/runs/bench-transfer/pretrained-two-phase/export/onnx-fp32/model.onnx m_tw.onnx
( while true; do find $R/tmpdir_watch -mindepth 1 -maxdepth 1 -printf '%f\n' >> $R/tmpdir_seen.txt; sleep 0.5; done ) &
WP=$!
uptime
/usr/bin/time -f "wall=%e s" env TMPDIR=$R/tmpdir_watch HOME=$R/home_tmpwatch PATH=$R/venv/bin:$PATH unshare -rn onnx2tf -i m_tw.onnx -o out_tw -n > $R/log_tmpwatch.txt 2>&1
echo rc=$?
kill $WP
tail -1 $R/log_tmpwatch.txt
echo "seen in TMPDIR during run:"; sort -u $R/tmpdir_seen.txt
echo "left in TMPDIR:"; ls -A $R/tmpdir_watch
echo "HOME files:"; find $R/home_tmpwatch -type f

#!/bin/sh
# rpcgen.sh: run rpcgen on one .x file so that the generated code includes its header by
# basename (rpcgen copies the input path verbatim into #include lines).
# usage: rpcgen.sh RPCGEN INPUT.x OUTDIR   -> OUTDIR/NAME.h and OUTDIR/NAME_xdr.c
set -eu
rpcgen=$1 input=$2 outdir=$3
name=$(basename "$input" .x)
cp "$input" "$outdir/$name.x"
cd "$outdir"
rm -f "$name.h" "${name}_xdr.c"
"$rpcgen" -h -o "$name.h" "$name.x"
"$rpcgen" -c -o "${name}_xdr.c" "$name.x"

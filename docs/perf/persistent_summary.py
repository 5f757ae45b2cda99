#!/usr/bin/env python3
# persistent_summary.py: per-run figures of docs/perf/persistent-conn.sh's output.  Run in its OUTDIR with the run numbers as arguments:
#   cd OUTDIR && python3 /work/main/docs/perf/persistent_summary.py 1 2 3 4 5 6
import json,statistics,sys
runs=sys.argv[1:] or ['1','2','3','4','5','6']
def rows(f):
    d=json.load(open(f)); return {(r['participant'],r['metric']):r for r in d['rows']}
print("three-way (persistent, per-call, floor): cycle median/p99 us, ratio to floor")
rat={'persistent':[],'per-call':[]}
for r in runs:
    x=rows(f'three-{r}.json'); fl=x[('floor','cycle')]
    line=[]
    for p in ('persistent','per-call','floor'):
        c=x[(p,'cycle')]; line.append(f"{p} {c['median_us']:.1f}/{c['p99_us']:.0f} cpu {c['daemon_cpu_us_per_op'] or 0:.1f}")
        if p!='floor': rat[p].append(c['median_us']/fl['median_us'])
    print(r, ' | '.join(line), ' ratios', ' '.join(f"{k}={v[-1]:.2f}" for k,v in rat.items()))
print('median ratios', {k:round(statistics.median(v),2) for k,v in rat.items()})
print("floor-only runs: vmlockd cycle median/p99, floor median, ratio")
fr={'a':[],'b':[]}
for r in runs:
    for x in 'ab':
        d=rows(f'floor-{x}-{r}.json'); c=d[(f'vmlockd-{x}','cycle')]; fl=d[('floor','cycle')]
        fr[x].append(c['median_us']/fl['median_us'])
        print(r, 'persistent' if x=='a' else 'per-call  ', f"{c['median_us']:.1f}/{c['p99_us']:.0f} cpu {c['daemon_cpu_us_per_op']:.1f}", f"floor {fl['median_us']:.1f}/{fl['p99_us']:.0f}", f"ratio {fr[x][-1]:.2f}")
print('median floor ratios persistent', round(statistics.median(fr['a']),2), sorted(round(v,2) for v in fr['a']), 'per-call', round(statistics.median(fr['b']),2), sorted(round(v,2) for v in fr['b']))

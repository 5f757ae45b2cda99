/* vmb_plot.h: draws vmlock-bench's results as a PNG with gnuplot (Debian package gnuplot-nox). */
#ifndef VMB_PLOT_H
#define VMB_PLOT_H

#include "vmb_results.h"
#include "vml_error.h"

/*
 * Draw results into png (overwritten): with curve rows (disks mode: x = K), the median and
 * p90 cycle time against K on log-log axes, one line per participant; otherwise the
 * cumulative distribution of every "cycle" or "handoff" row on a log latency axis.  The data
 * and script are written to a temporary directory (removed afterwards) and gnuplot is run on
 * them; its absence is an error naming the package.
 */
int vmb_plot(const vmb_results *results, const char *png, vml_error *err);

#endif

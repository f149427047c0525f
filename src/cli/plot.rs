//! `kvsim plot`: the charts of a run or sweep directory.

use std::path::Path;

use super::{PlotArgs, say};
use crate::error::Error;
use crate::output::OutputDir;

pub(super) fn plot(a: &PlotArgs) -> Result<(), Error> {
    let out = a.out.clone().unwrap_or_else(|| {
        a.results
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("plots")
    });
    let opts = crate::report::plot::PlotOptions {
        format: a.format,
        x: a.x.clone(),
        y: a.y.clone(),
        series: a.series.clone(),
    };
    let charts =
        crate::report::plot::render_charts(crate::report::plot::Table::read(&a.results)?, &opts)?;
    let dir = OutputDir::begin(&out, "plot", &[&a.results])?;
    let mut names = Vec::with_capacity(charts.len());
    for (name, bytes) in charts {
        names.push(dir.write(&name, &bytes)?.display().to_string());
    }
    dir.commit()?;
    say(format_args!("wrote {}", names.join(", ")))
}
